"""Workers and threads: unfrozen-phase training throughput of `train`'s own learner for each (DataLoader workers, torch threads).

Same images (the first N of classify-leaves), tf_efficientnet_lite0, 128 px, batch 32, flips, BatchNorm in eval, the first 4
groups frozen (today's unfrozen phase). One process per setting, in sequence, settings alternating over `--rounds`, so
drift on a shared machine hits every setting alike. Reports images/s of the training batches (first batch excluded).

    python bench/pipeline.py [--n 1024] [--settings 2:2,0:2,1:2,1:1] [--rounds 2]
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def one(n, workers, threads):
    "Train one epoch over the first `n` images in this process; return images/s"
    import torch
    torch.set_num_threads(threads)
    import pandas as pd
    from fastai.vision.all import set_seed
    from leaf_fastai.data import read_labels, leaf_dls
    from leaf_fastai.models import find_weights, leaf_learner
    from leaf_fastai.callbacks import BnEval, FreezeGroups
    from leaf_fastai.train import _device_cbs
    sys.path.insert(0, str(HERE)); from b2_throughput import TrainTimer
    tr = read_labels(DATA).iloc[:n]
    df = pd.concat([tr, tr.iloc[:64]], ignore_index=True); df['is_valid'] = [False]*n + [True]*64
    w = find_weights('tf_efficientnet_lite0'); set_seed(42)
    learn = leaf_learner(leaf_dls(DATA, df, 128, 32, 'flips', w.mean, w.std, num_workers=workers), 'tf_efficientnet_lite0', w, ps=0.1)
    _device_cbs(learn, True, False); learn.unfreeze()
    timer = TrainTimer()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, slice(1e-4, 1e-3), cbs=[timer, BnEval(), FreezeGroups(4)])
    return timer.n/timer.secs

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=1024); p.add_argument('--settings', default='2:2,0:2,1:2,1:1')
    p.add_argument('--rounds', type=int, default=2); p.add_argument('--one', default=None, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        w,t = map(int, a.one.split(':')); print(json.dumps(dict(img_s=one(a.n, w, t)))); return
    res = {s:[] for s in a.settings.split(',')}
    for r in range(a.rounds):
        for s in res:
            out = subprocess.run([sys.executable, __file__, '--n', str(a.n), '--one', s], capture_output=True, text=True, check=True).stdout
            res[s].append(json.loads(out.strip().splitlines()[-1])['img_s'])
            print(f"round {r}: workers:threads {s}: {res[s][-1]:.1f} img/s", flush=True)
    base = sum(res[a.settings.split(',')[0]])/a.rounds
    summary = {s:dict(img_s=[round(v,1) for v in vs], mean=round(sum(vs)/len(vs),1), vs_first=round(sum(vs)/len(vs)/base,3)) for s,vs in res.items()}
    meta = dict(command=' '.join(['python']+sys.argv), cpus=os.cpu_count(), date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/'pipeline.json').write_text(json.dumps(dict(meta=meta, results=summary), indent=2))
    for s,v in summary.items(): print(f"workers:threads {s}: mean {v['mean']} img/s ({v['vs_first']}x of {a.settings.split(',')[0]})")

if __name__ == '__main__': main()
