"""A long budget against the plain loop given the same time (issue #12: "at 3x the plain loop's time, the plan is at
least as accurate as the plain loop run for that same time"), on a stratified quarter of the data.

The B1 split with 25% of its training images (`b1_accuracy.make_split(frac=0.25)`: 3,301 train, all 1,467 validation
images), tf_efficientnet_lite0 with its ImageNet weights, 128 px. First the seed-style plain loop (`plain_loop.py`,
batch 32, AdamW, 10x head LR, cosine, label smoothing) for `--epochs` epochs (9: three times its 3-epoch schedule, so
about 3x its 3-epoch time); then `leaf_fastai train --budget S` as a process, S = the plain loop's whole wall time.
Both report accuracy on the same 1,467 validation images (the plain loop: its best epoch). One run, in sequence.

    python bench/long_budget.py --epochs 9 --out long_budget.json
"""
import argparse, json, sys, time, platform, subprocess
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
import plain_loop
from b1_accuracy import make_split, DATA, HERE, run_cli

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--epochs', type=int, default=9); p.add_argument('--frac', type=float, default=0.25)
    p.add_argument('--budget', type=float, default=None, help='seconds for the leaf_fastai side (default: the plain loop\'s wall time)')
    p.add_argument('--sides', default='plain,budget'); p.add_argument('--out', default='long_budget.json')
    a = p.parse_args()
    split_file, sdf = make_split(DATA, a.frac, fn=HERE/'work'/'split_quarter.csv')
    print(f"split: {(~sdf.is_valid).sum()} train / {sdf.is_valid.sum()} valid images", flush=True)
    res, budget = [], a.budget
    for side in a.sides.split(','):
        t0 = time.time()
        if side=='plain':
            r = plain_loop.run(data=str(DATA), split_file=str(split_file), epochs=a.epochs, size=128, bs=32)
            r = {**{k:v for k,v in r.items() if k!='per_epoch'}, 'side': f'plain loop, {a.epochs} epochs', 'history': [round(e['valid_acc'], 4) for e in r['per_epoch']]}
        else:
            budget = budget or round(res[0]['wall_seconds'])
            r = run_cli(f'budget{budget}s', DATA, split_file, '--budget', f'{budget}s')
        r['wall_seconds'] = time.time()-t0
        res.append(r)
        print(json.dumps({k:v for k,v in r.items() if k not in ('history','options')}), flush=True)
    meta = dict(command=' '.join(['python']+sys.argv), machine=f"{platform.processor() or platform.machine()}, 2 cores", date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/a.out).write_text(json.dumps(dict(meta=meta, results=res), indent=2))
    for r in res: print(f"{r['side']:<28}{r['valid_acc']:>8.4f}{r.get('best_valid_acc') or r['valid_acc']:>8.4f}{r['wall_seconds']:>8.0f} s")

if __name__ == '__main__': main()
