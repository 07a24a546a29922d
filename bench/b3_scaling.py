"""B3: scaling with data size: time per epoch and peak memory at growing fractions of classify-leaves.

Each fraction is a stratified subset of train.csv (training and validation images both scale), trained by
`leaf_fastai train` with its defaults (or `--train-args`) in its own process: today the warm-up's one pass (pooled
features and the trunk cache), the head, the tail epochs on the cached trunk. Reported: seconds of each phase, seconds
per 1,000 images, the trunk cache's size and the process's peak RSS.

    python bench/b3_scaling.py [--fracs 0.25,0.5,1.0] [--cache memory|disk] [--train-args "--epochs 1 --tail-epochs 0"] [--out b3.json]
"""
import argparse, json, subprocess, sys, time
from pathlib import Path
from sklearn.model_selection import train_test_split
from leaf_fastai.data import read_labels, split_leaves, save_split

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=str(DATA)); p.add_argument('--fracs', default="0.25,0.5,1.0")
    p.add_argument('--cache', default='memory', help="the warm-up's feature cache: memory or disk")
    p.add_argument('--train-args', default='', help="more `train` options, e.g. '--epochs 1 --tail-epochs 0' (the default before the tail epochs)")
    p.add_argument('--out', default=None, help='results file in bench/results (default: b3.json, or b3_disk.json with --cache disk)')
    a = p.parse_args()
    full = split_leaves(read_labels(a.data), valid_pct=0.1, seed=42)
    res = []
    for frac in map(float, a.fracs.split(',')):
        # stratified by species and by split, so every fraction keeps the 90/10 split (by species alone, the same seed as
        # split_leaves' picked mostly training images: 99 validation images at 25%)
        sdf = full if frac >= 1 else full.loc[sorted(train_test_split(full.index, train_size=frac, stratify=full.label+full.is_valid.astype(str), random_state=42)[0])]
        split = HERE/'work'/f'b3_split_{frac}.csv'; save_split(sdf, split)
        out = HERE/'work'/f'b3_{frac}'
        t0 = time.time()
        subprocess.run([str(Path(sys.executable).parent/'leaf_fastai'), 'train', '--data', a.data, '--split-file', str(split),
                        *a.train_args.split(), '--cache', a.cache, '--out', str(out), '--quiet', '--overwrite'], check=True, capture_output=True)
        m = json.loads((out/'metrics.json').read_text())
        n = m['n_train'] + m['n_valid']
        r = dict(frac=frac, cache=a.cache, n_images=n, n_train=m['n_train'], wall_s=time.time()-t0, warmup_s=m['warmup_s'], tail_s=m.get('tail_s', 0), epoch_s=m['train_s'],
                 s_per_1k_images=(m['warmup_s']+m.get('tail_s', 0)+m['train_s'])/n*1000, trunk_cache_mb=m.get('trunk_cache_mb'),
                 peak_rss_mb=m['peak_rss_mb'], valid_acc=m['valid_acc'])
        res.append(r); print(json.dumps(r), flush=True)
    meta = dict(command=' '.join(['python']+sys.argv), date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/(a.out or ('b3_disk.json' if a.cache=='disk' else 'b3.json'))).write_text(json.dumps(dict(meta=meta, results=res), indent=2))
    print(f"\n{'frac':>6}{'images':>8}{'warm-up s':>11}{'epoch s':>9}{'s/1k img':>10}{'peak RSS MB':>13}")
    for r in res: print(f"{r['frac']:>6}{r['n_images']:>8}{r['warmup_s']:>11.0f}{r['epoch_s']:>9.0f}{r['s_per_1k_images']:>10.1f}{r['peak_rss_mb']:>13}")

if __name__ == '__main__': main()
