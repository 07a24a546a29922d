"""Rapid III item 4 sweep on a stratified quarter: MixUp and CutMix on the cached trunk maps of the tail epochs.

The B1 split with 25% of its training images (`b1_accuracy.make_split(frac=0.25)`: 3,301 train, all 1,467 validation
images), tf_efficientnet_lite0 with its ImageNet weights, 128 px, the library's own pieces as `train` uses them: one
pass caching the trunk after 6 groups in 2 fixed views of each training image (`head_warmup(views=2, cut=6)`), the head
warm-up, then each tail variant from the same warmed-up weights and seed: `tail_learner` (random flips of the maps,
batch 64), `fit_one_cycle(epochs, slice(1e-3, 2e-3))` as `fit_tail` does, with fastai's `MixUp(alpha)` or
`CutMix(alpha)` callbacks on the maps (mixing 112x8x8 maps of two images, or pasting a rectangle of one image's map
into another's), or neither. Accuracy: the tail's prediction on the 1,467 validation images (plain view, no TTA).

    python bench/sweep_maps_mix.py --epochs 8 --out sweep_maps_mix.json
"""
import argparse, json, sys, time, platform, copy
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import make_split, DATA, HERE
from fastai.vision.all import set_seed, noop, MixUp, CutMix
from leaf_fastai.data import leaf_dls
from leaf_fastai.models import find_weights, leaf_learner
from leaf_fastai.warmup import head_warmup, tail_learner

@torch.no_grad()
def acc(tl, maps, y):
    tl.model.eval()
    p = torch.cat([tl.model(maps[i:i+256].float().contiguous(memory_format=torch.channels_last)) for i in range(0, len(maps), 256)])
    return float((p.argmax(1)==y).float().mean())

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--epochs', type=int, default=8); p.add_argument('--out', default='sweep_maps_mix.json')
    p.add_argument('--frac', type=float, default=0.25); p.add_argument('--variants', default='none,mixup0.2,mixup0.4,cutmix1.0')
    a = p.parse_args()
    split_file, sdf = make_split(DATA, a.frac, fn=HERE/'work'/'split_quarter.csv')
    print(f"split: {(~sdf.is_valid).sum()} train / {sdf.is_valid.sum()} valid images", flush=True)
    w = find_weights('tf_efficientnet_lite0')
    set_seed(42)
    dls = leaf_dls(DATA, sdf, 128, 32, 'flips', w.mean, w.std)
    learn = leaf_learner(dls, 'tf_efficientnet_lite0', w)
    t = time.time()
    hl = head_warmup(learn, 15, 1e-2, views=2, quiet=True, cut=6)
    res = [dict(phase='pass and head warm-up', seconds=round(time.time()-t, 1), head_acc=float(hl.recorder.values[-1][2]))]
    print(json.dumps(res[-1]), flush=True)
    c, state = hl.cache, copy.deepcopy(learn.model.state_dict())
    for v in a.variants.split(','):
        learn.model.load_state_dict(state); set_seed(42)
        tl = tail_learner(learn, c, 64)
        tl.remove_cb(tl.progress); tl.logger = noop
        cbs = [MixUp(float(v[5:]))] if v.startswith('mixup') else [CutMix(float(v[6:]))] if v.startswith('cutmix') else []
        t = time.time()
        tl.fit_one_cycle(a.epochs, slice(1e-3, 2e-3), cbs=cbs)
        res.append(dict(variant=v, epochs=a.epochs, tail_s=round(time.time()-t, 1), acc=acc(tl, c.mv, c.yv),
                        per_epoch=[round(float(r[2]), 4) for r in tl.recorder.values]))
        print(json.dumps(res[-1]), flush=True)
    meta = dict(command=' '.join(['python']+sys.argv), machine=f"{platform.processor() or platform.machine()}, 2 cores", date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/a.out).write_text(json.dumps(dict(meta=meta, results=res), indent=2)+'\n')

if __name__ == '__main__': main()
