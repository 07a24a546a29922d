"""Sweep of the unfrozen phase after the features warm-up, on a quarter of classify-leaves.

The B1 protocol at 25% of the training images (3,301 train / 1,467 validation, `b1_accuracy.make_split(frac=0.25)`),
tf_efficientnet_lite0, 128 px, batch 32: `leaf_fastai.train` with one unfrozen epoch per configuration, printing the
warm-up's and the final validation accuracy and the seconds of each phase. The table in nbs/02_train.ipynb comes from it.

    python bench/sweep_unfrozen.py [--configs A,B,C]
"""
import argparse, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import make_split, DATA, HERE
from leaf_fastai.train import train

CONFIGS = dict(A=dict(frozen_groups=0, lr=1e-3), B=dict(frozen_groups=4, lr=1e-3), C=dict(frozen_groups=4, lr=2e-3),
               D=dict(frozen_groups=6, lr=1e-3), E=dict(frozen_groups=7, lr=1e-3))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--configs', default=','.join(CONFIGS)); a = p.parse_args()
    fn,_ = make_split(str(DATA), 0.25, fn=HERE/'work'/'quarter_split.csv')
    for k in a.configs.split(','):
        kw = dict(epochs=1, **CONFIGS[k]); out = HERE/'work'/f'sweep_{k}'
        train(str(DATA), split_file=str(fn), out=out, quiet=True, overwrite=True, **kw)
        m = json.loads((out/'metrics.json').read_text())
        print(f"{k} {kw}: valid acc {m['valid_acc']:.4f}, warm-up {m['warmup_s']:.0f} s, epoch {m['train_s']:.0f} s", flush=True)

if __name__ == '__main__': main()
