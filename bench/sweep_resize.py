"""Progressive resizing: does finishing on larger images win time-to-accuracy? On a quarter of classify-leaves.

The B1 protocol at 25% of the training images (3,301 train / 1,467 validation, `b1_accuracy.make_split(frac=0.25)`),
tf_efficientnet_lite0, batch 32, warm-up at 128 px: `leaf_fastai.train` with its defaults and, per configuration,
`epochs` and `final_size` (the size of the last unfrozen epoch, validation included). Prints the final validation
accuracy and the seconds of the unfrozen phase and of the whole run, and writes bench/results/sweep_resize.json.

    python bench/sweep_resize.py [--configs A,B,C,D]
"""
import argparse, json, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import make_split, DATA, HERE
from leaf_fastai.train import train

CONFIGS = dict(A=dict(epochs=1), B=dict(epochs=1, final_size=160), C=dict(epochs=2), D=dict(epochs=2, final_size=160))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--configs', default=','.join(CONFIGS)); a = p.parse_args()
    fn,_ = make_split(str(DATA), 0.25, fn=HERE/'work'/'quarter_split.csv')
    res = []
    for k in a.configs.split(','):
        out = HERE/'work'/f'resize_{k}'
        t0 = time.time(); train(str(DATA), split_file=str(fn), out=out, quiet=True, overwrite=True, **CONFIGS[k]); wall = time.time()-t0
        m = json.loads((out/'metrics.json').read_text())
        r = dict(config=k, options=CONFIGS[k], valid_acc=m['valid_acc'], warmup_s=m['warmup_s'], train_s=m['train_s'], wall_s=wall)
        res.append(r); print(json.dumps(r), flush=True)
    meta = dict(command=' '.join(['python']+sys.argv), date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/'sweep_resize.json').write_text(json.dumps(dict(meta=meta, results=res), indent=2))

if __name__ == '__main__': main()
