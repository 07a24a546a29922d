"""Test-time augmentation: the fixed dihedral views of `predict_probs` against fastai's random `Learner.tta`, on a run's own
validation images (or a data folder with `test_labels.csv`).

- new views: each of the 8 views (`tta_views`: plain, flips, quarter turns) predicted once; accuracy of `--tta n` (the plain
  image and the first n views, equal weights) for n = 0..7, the same with fastai's `beta=0.25` weighting, and every pair
  of views for `--tta 2`; `predict_probs(tta=2)` is checked to be the mean of the first three views;
- old: fastai's `learn.tta(n=N, beta=0.25)` with its random flips (`DihedralItem` on the images, drawn from seed 0 as the old
  `predict_probs` did) for each N of `--old`, in the images' order and reversed (how many labels the order changes);
- seconds of each (comparable only on an otherwise idle machine).

    python bench/tta_views.py --run RUN [--data DIR] [--labels test_labels.csv] [--old 2,4,8] [--out tta_views.json]
"""
import argparse, itertools, json, platform, sys, time
from pathlib import Path
import numpy as np, pandas as pd, torch
from PIL import Image
from fastai.vision.all import DataBlock, ImageBlock, CategoryBlock, Normalize, no_random
from leaf_fastai.data import LeafImage, leaf_tfms, probs_accuracy
from leaf_fastai.models import fold_bn
from leaf_fastai.rundir import RunDir
from leaf_fastai.predict import load_run, predict_probs, tta_views

HERE = Path(__file__).parent

def images_and_labels(run, data=None, labels=None):
    "The run's validation images and labels (split.csv), or `data/labels`'s"
    rd = RunDir(run)
    if labels:
        t = pd.read_csv(Path(data)/labels); return [Path(data)/f for f in t.image], t.label.astype(str).tolist()
    v = rd.read_split().query('is_valid'); data = Path(data or rd.read_json('config.json')['options']['data'])
    return [data/f for f in v.image], v.label.astype(str).tolist()

def view_probs(learn, items):
    "(views, images, classes) softmax probabilities of each of the 8 `tta_views`, images decoded once"
    body = fold_bn(learn.model[0], torch.randn(2, 3, 64, 64)).to(memory_format=torch.channels_last)
    model = torch.nn.Sequential(body, learn.model[1]).eval()
    out = [[] for _ in tta_views]
    with torch.inference_mode():
        for (x,) in learn.dls.test_dl(items, bs=64):
            x = x.as_subclass(torch.Tensor)
            for i,view in enumerate(tta_views.values()): out[i].append(model(view(x)).float().softmax(1))
    return torch.stack([torch.cat(o) for o in out]).numpy()

def old_tta(learn, items, n, seed=0):
    "The old `predict_probs(tta=n)`: fastai's `learn.tta` with `DihedralItem` drawn per image from `seed` (fold_bn left out: the same outputs)"
    m = learn.meta
    item_tfms,_ = leaf_tfms(m['size'], 'flips')
    dblock = DataBlock(blocks=(ImageBlock(LeafImage), CategoryBlock(vocab=m['classes'])), get_x=lambda o: o, get_y=lambda o: m['classes'][0],
                       splitter=lambda o: ([0],[1]), item_tfms=item_tfms, batch_tfms=Normalize.from_stats(m['mean'], m['std']))
    blank = Image.new('RGB', (m['size'],)*2)
    dls = dblock.dataloaders([blank, blank], bs=64, num_workers=0, verbose=False)
    dl = dls.test_dl(items, bs=64)
    with learn.no_bar(), learn.no_logging(), no_random(seed): return learn.tta(dl=dl, n=n)[0].numpy()

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--run', required=True); p.add_argument('--data', default=None); p.add_argument('--labels', default=None)
    p.add_argument('--old', default='2,4,8'); p.add_argument('--out', default='tta_views.json')
    a = p.parse_args()
    items, labels = images_and_labels(a.run, a.data, a.labels)
    learn = load_run(a.run); classes = learn.meta['classes']
    acc = lambda P: round(probs_accuracy(P, labels, classes), 4)
    res = dict(command='python bench/tta_views.py ' + ' '.join(sys.argv[1:]), date=time.strftime('%Y-%m-%d %H:%M'), machine=platform.processor() or platform.machine(),
               threads=torch.get_num_threads(), arch=learn.meta['arch'], size=learn.meta['size'], n_images=len(items), views=list(tta_views))
    t0 = time.perf_counter(); V = view_probs(learn, items); res['all_views_seconds'] = round(time.perf_counter()-t0, 1)
    t0 = time.perf_counter(); p2 = predict_probs(learn, items, 2).values; res['new_tta2_seconds'] = round(time.perf_counter()-t0, 1)
    res['check_tta2_is_mean_of_3_views'] = float(abs(p2 - V[:3].mean(0)).max())
    res['each_view'] = {k: acc(V[i]) for i,k in enumerate(tta_views)}
    res['new'] = {n: acc(V[:n+1].mean(0)) for n in range(len(tta_views))}
    res['new_beta'] = {n: acc(0.25*V[0] + 0.75*V[1:n+1].mean(0)) for n in range(1, len(tta_views))}
    names = list(tta_views)
    res['new_tta2_pairs'] = {f'{names[i]} + {names[j]}': acc(V[[0,i,j]].mean(0)) for i,j in itertools.combinations(range(1, len(names)), 2)}
    print(json.dumps({k: res[k] for k in ('n_images', 'each_view', 'new', 'new_beta', 'all_views_seconds', 'new_tta2_seconds', 'check_tta2_is_mean_of_3_views')}), flush=True)
    res['old'] = {}
    for n in map(int, a.old.split(',')):
        t0 = time.perf_counter(); P = old_tta(learn, items, n); s = time.perf_counter()-t0
        R = old_tta(learn, items[::-1], n)[::-1]
        res['old'][n] = dict(acc=acc(P), acc_reversed=acc(R), seconds=round(s, 1),
                             labels_changed_by_reversing=int((P.argmax(1)!=R.argmax(1)).sum()), max_prob_diff_reversed=round(float(abs(P-R).max()), 4))
        print(json.dumps({f'old tta={n}': res['old'][n]}), flush=True)
    (HERE/'results'/a.out).write_text(json.dumps(res, indent=2))

if __name__ == '__main__': main()
