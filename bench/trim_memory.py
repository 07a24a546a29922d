"""Cost and effect of `TrimMemory` (glibc `malloc_trim` after every training batch) in the unfrozen phase.

tf_efficientnet_lite0 with its ImageNet weights, 128 px, batch 32, the defaults of `train` (BatchNorm in eval mode, first
four groups frozen, channels-last), on `--n` real classify-leaves training images. One learner trains a one-cycle epoch
without the callback, with it trimming after every batch, and after every 8 (the default), alternating for `--rounds` rounds so machine noise hits both alike. Reported per round:
training img/s, and how much the process's RSS grew during the epoch. Writes bench/results/trim_memory.txt.

    python bench/trim_memory.py
"""
import argparse, time, statistics, sys, pandas as pd
from fastai.callback.progress import ProgressCallback
from pathlib import Path
from leaf_fastai.data import read_labels, split_leaves, leaf_dls
from leaf_fastai.models import find_weights, leaf_learner
from leaf_fastai.train import _device_cbs
from leaf_fastai.callbacks import TrimMemory, BnEval, FreezeGroups

DATA = Path(__file__).parent.parent.parent/'shared'/'data'/'classify-leaves'
def rss_mb(): return int(Path('/proc/self/status').read_text().split('VmRSS:')[1].split()[0])/1024

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=640); p.add_argument('--rounds', type=int, default=3)
    a = p.parse_args()
    w = find_weights('tf_efficientnet_lite0')
    df = split_leaves(read_labels(DATA), valid_pct=0.1, seed=42)
    df = df[~df.is_valid].head(a.n)
    df = pd.concat([df, df.head(32).assign(is_valid=True)])  # a token validation batch
    dls = leaf_dls(DATA, df, 128, 32, 'flips', w.mean, w.std, num_workers=2)
    learn = leaf_learner(dls, 'tf_efficientnet_lite0', w, ps=0.1)
    _device_cbs(learn, True, False); learn.remove_cbs([TrimMemory, ProgressCallback])
    learn.unfreeze()
    lines = [' '.join(['python']+sys.argv)]
    def say(t): print(t, flush=True); lines.append(t)
    sides = {'off': None, 'every batch': 1, 'every 8 (default)': 8}
    speed = {k: [] for k in sides}
    for r in range(a.rounds):
        for name, every in sides.items():
            cbs = [BnEval(), FreezeGroups(4)] + ([TrimMemory(every)] if every else [])
            r0 = rss_mb(); t = time.perf_counter()
            learn.fit_one_cycle(1, slice(1e-4, 1e-3), cbs=cbs)
            speed[name].append(len(dls.train)*32/(time.perf_counter()-t))
            say(f"round {r}, TrimMemory {name}: {speed[name][-1]:.1f} img/s (epoch incl. a 32-image validation), RSS {r0:.0f} -> {rss_mb():.0f} MB")
    m = {k: statistics.median(v) for k, v in speed.items()}
    say('median img/s: ' + ', '.join(f"{k} {v:.1f} ({v/m['off']:.3f}x)" for k, v in m.items()))
    (Path(__file__).parent/'results'/'trim_memory.txt').write_text('\n'.join(lines)+'\n')

if __name__ == '__main__': main()
