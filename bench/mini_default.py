"""leaves-mini: the default run against fastai's frozen epoch + 1 epoch (`--warmup epochs`), whole process, alternating.

Small sets are where most users start. Each side is a `leaf_fastai train` process on leaves-mini (270 train / 30 valid
images, 10 species, 128 px), timed whole (start-up, imports, checks, run folder); accuracy is scored on leaves-mini's 60
held-out test images (test_labels.csv) with `predict --tta 0`, outside the timing. Sides alternate, `--repeats` times.

    python bench/mini_default.py            # -> bench/results/mini_default.json (--out NAME for another file)
"""
import argparse, json, subprocess, sys, time, platform, statistics
from pathlib import Path
import pandas as pd

HERE = Path(__file__).parent
MINI = HERE.parent.parent/'shared'/'data'/'leaves-mini'
EXE = str(Path(sys.executable).parent/'leaf_fastai')
SIDES = dict(default=[], fastai_frozen_plus_1=['--warmup', 'epochs', '--freeze-epochs', '1', '--tail-epochs', '0', '--epochs', '1'])

def run(side, args, k):
    out = HERE/'work'/f'mini_{side}'
    t0 = time.time()
    subprocess.run([EXE, 'train', '--data', str(MINI), '--out', str(out), '--overwrite', '--seed', str(k), *args], check=True, capture_output=True)
    wall = time.time()-t0
    sub = out/'held_out.csv'
    subprocess.run([EXE, 'predict', '--run', str(out), '--data', str(MINI), '--tta', '0', '--out', str(sub)], check=True, capture_output=True)
    p,t = pd.read_csv(sub), pd.read_csv(MINI/'test_labels.csv')
    acc = float((p.merge(t, on='image', suffixes=('_p', ''))[['label_p','label']].nunique(axis=1)==1).mean())
    m = json.loads((out/'metrics.json').read_text())
    return dict(side=side, seed=k, wall_s=wall, held_out_acc=acc, valid_acc=m['valid_acc'])

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--repeats', type=int, default=3)
    ap.add_argument('--out', default='mini_default.json', help='file name under bench/results')
    a = ap.parse_args()
    res = []
    for k in range(a.repeats):
        for side,args in SIDES.items():
            r = run(side, args, k); res.append(r); print(json.dumps(r), flush=True)
    summary = {s: dict(median_wall_s=statistics.median(r['wall_s'] for r in res if r['side']==s),
                       mean_held_out_acc=statistics.mean(r['held_out_acc'] for r in res if r['side']==s)) for s in SIDES}
    meta = dict(command=' '.join(['python']+sys.argv), machine=f"{platform.processor() or platform.machine()}, 2 cores", date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/a.out).write_text(json.dumps(dict(meta=meta, summary=summary, runs=res), indent=2))
    print(json.dumps(summary, indent=1))

if __name__ == '__main__': main()
