"""Accuracy against seconds of the budgeted B1 runs of `bench/rapid3.py`, one line per plan: the plan before Rapid III
(one view, one tail, 128 px), views and tails at 128 px (sessions 12-13), and views, tails and the image size the plan
chooses (session 14); scored as `predict` scores them (`--tta 2`, its default: solid) and without TTA (dashed).

    python bench/plot_rapid3.py      # reads bench/results/rapid3_*.json, writes bench/results/rapid3_accuracy.png
"""
import json
from pathlib import Path
import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt

HERE = Path(__file__).parent
PLANS = {  # label: (colour, result files)
    'one view, one tail, 128 px (before Rapid III)': ('tab:gray', ['5m_auto', '10m_auto', '15m_today']),
    'views and tails, 128 px (sessions 12-13)': ('tab:blue', ['5m_plan', '10m_s13', '15m_auto']),
    'views, tails and image size (session 14)': ('tab:green', ['5m_s14', '10m_s14', '15m_s14', '30m_s14']),
}

def main():
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, (c, files) in PLANS.items():
        rs = [json.loads(f.read_text()) for f in (HERE/'results'/f'rapid3_{n}.json' for n in files) if f.exists()]
        rs = sorted(rs, key=lambda r: r['train_wall_s'])
        x = [r['train_wall_s'] for r in rs]
        ax.plot(x, [r['acc_tta2'] for r in rs], 'o-', color=c, label=f'{name}: predict (--tta 2)')
        ax.plot(x, [r['acc_tta0'] for r in rs], 'x--', color=c, alpha=0.5, label='  the same, no TTA')
        for r in rs: ax.annotate(f"{r.get('size') or 128}px {r['views']}v {r['tails']}t", (r['train_wall_s'], r['acc_tta2']),
                                 textcoords='offset points', xytext=(4, 6 if 'session 14' in name else -10), fontsize=7, color=c)
    ax.set_xlabel('train --budget: whole process, seconds (2 CPU cores)'); ax.set_ylabel('accuracy, B1 validation (1,467 images)')
    ax.set_title('leaf_fastai train --budget 5m / 10m / 15m / 30m, B1 split'); ax.grid(alpha=0.3); ax.legend(fontsize=7, loc='lower right')
    fig.tight_layout(); fig.savefig(HERE/'results'/'rapid3_accuracy.png', dpi=90)
    print(HERE/'results'/'rapid3_accuracy.png')

if __name__ == '__main__': main()
