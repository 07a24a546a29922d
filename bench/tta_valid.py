"""Prediction defaults: validation accuracy and seconds of a finished run's model with TTA passes 0, 2, 4 (and optionally at a
larger size: FixRes), on the run's own validation images (the B1 split when run on `bench/work/leaf1`).

    python bench/tta_valid.py --run bench/work/leaf1 [--tta 0,2,4] [--sizes 128,160]
"""
import argparse, json, sys, time
from pathlib import Path
from leaf_fastai.rundir import RunDir
from leaf_fastai.predict import load_run, predict_probs, infer_dls
from leaf_fastai.data import probs_accuracy, leaf_tfms

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run', default=str(HERE/'work'/'leaf1')); p.add_argument('--data', default=str(DATA))
    p.add_argument('--tta', default='0,2,4'); p.add_argument('--sizes', default=None, help='prediction sizes (default: the run\'s own)')
    a = p.parse_args()
    rd = RunDir(a.run)
    v = rd.read_split().query('is_valid')
    items, res = [Path(a.data)/f for f in v.image], []
    for size in ([int(s) for s in a.sizes.split(',')] if a.sizes else [None]):
        learn = load_run(rd.path)
        if size: learn.meta['size'] = size; learn.dls = infer_dls(learn.meta, 64, None)
        for n in map(int, a.tta.split(',')):
            t0 = time.time(); probs = predict_probs(learn, items, n); s = time.time()-t0
            r = dict(size=size or learn.meta['size'], tta=n, valid_acc=round(probs_accuracy(probs, v.label, learn.meta['classes']), 4), seconds=round(s, 1), n_images=len(items))
            res.append(r); print(json.dumps(r), flush=True)
    meta = dict(command=' '.join(['python']+sys.argv), run=str(rd.path), date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/'tta_valid.json').write_text(json.dumps(dict(meta=meta, results=res), indent=2))

if __name__ == '__main__': main()
