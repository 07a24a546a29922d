"""Accuracy against seconds of the budgeted B1 runs of `bench/rapid3.py`: today's plan (one view, one tail) and the
plan with views and tails, scored as `predict` scores them (`--tta 2`, its default; and without TTA).

    python bench/plot_rapid3.py      # reads bench/results/rapid3_*.json, writes bench/results/rapid3_accuracy.png
"""
import json, sys
from pathlib import Path
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt

HERE = Path(__file__).parent

def main():
    rs = [json.loads(f.read_text()) for f in sorted((HERE/'results').glob('rapid3_*.json'))]
    groups = {}
    for r in rs:
        name = 'one view, one tail' if (r.get('views', 1), r.get('tails', 1)) == (1, 1) else 'views and tails'
        groups.setdefault(name, []).append(r)
    fig, ax = plt.subplots(figsize=(6, 4))
    for (name, g), c in zip(sorted(groups.items()), ('tab:gray', 'tab:green')):
        g = sorted(g, key=lambda r: r['train_wall_s'])
        x = [r['train_wall_s'] for r in g]
        ax.plot(x, [r['acc_tta2'] for r in g], 'o-', color=c, label=f'{name}, predict (--tta 2)')
        ax.plot(x, [r['acc_tta0'] for r in g], 'x--', color=c, alpha=0.6, label=f'{name}, no TTA')
        for r in g: ax.annotate(f"{r['views']}v {r['tails']}t", (r['train_wall_s'], r['acc_tta2']), textcoords='offset points', xytext=(4, 4), fontsize=7)
    ax.set_xlabel('train: whole process, seconds (2 CPU cores)'); ax.set_ylabel('accuracy, B1 validation (1,467 images)')
    ax.set_title('leaf_fastai train --budget, B1 split'); ax.grid(alpha=0.3); ax.legend(fontsize=7)
    fig.tight_layout(); fig.savefig(HERE/'results'/'rapid3_accuracy.png', dpi=90)
    print(HERE/'results'/'rapid3_accuracy.png')

if __name__ == '__main__': main()
