"""Decode once: epochs on the images the warm-up's pass kept (`image_dls`) against decoding them again each epoch
(`--no-image-cache`, fastai's DataLoader with `default_workers()`), same run options, sides alternating.

The B1 split with a stratified 25% of its training images (3,301 train, all 1,467 validation images), lite0, 128 px,
`leaf_fastai train --tail-epochs 0 --epochs E` as processes: the features warm-up, then E epochs on the images
(BatchNorm in eval, the first 4 groups frozen, batch 32). Reports the image epochs' training images/s
(`n_train * E / train_s`, validation included), the run's wall time and its accuracy.

    python bench/image_cache.py --epochs 2 --rounds 1 --out image_cache.json
"""
import argparse, json, sys, time, platform
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import make_split, DATA, HERE, run_cli

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--epochs', type=int, default=2); p.add_argument('--rounds', type=int, default=1)
    p.add_argument('--frac', type=float, default=0.25); p.add_argument('--out', default='image_cache.json')
    a = p.parse_args()
    split_file, sdf = make_split(DATA, a.frac, fn=HERE/'work'/'split_quarter.csv')
    res = []
    for i in range(a.rounds):
        for side,extra in (('image_cache', []), ('decode', ['--no-image-cache'])):
            t0 = time.time()
            r = run_cli(f'{side}', DATA, split_file, '--tail-epochs', '0', '--epochs', str(a.epochs), *extra)
            m = json.loads((HERE/'work'/side/'metrics.json').read_text())
            r.update(side=side, round=i, wall_seconds=time.time()-t0, image_cache_mb=m.get('image_cache_mb'), train_s=m['train_s'],
                     images_per_s=m['n_train']*a.epochs/m['train_s'], peak_rss_mb=m['peak_rss_mb'])
            res.append(r)
            print(json.dumps({k:r[k] for k in ('side','round','valid_acc','wall_seconds','train_s','images_per_s','image_cache_mb','peak_rss_mb')}), flush=True)
    meta = dict(command=' '.join(['python']+sys.argv), machine=f"{platform.processor() or platform.machine()}, 2 cores", date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/a.out).write_text(json.dumps(dict(meta=meta, results=res), indent=2))

if __name__ == '__main__': main()
