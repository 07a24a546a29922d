"""Head sweep on cached features: which head, dropout, epochs and LR the features warm-up should use.

Computes the frozen body's pooled features (average and max) of the B1 split once (`bench/work/split.csv`, made by
`b1_accuracy.py`; tf_efficientnet_lite0, ImageNet weights, 128 px, resize only), caches them in `bench/work/feats.pt`,
then trains each head on the cache with fastai's `fit_one_cycle`, label smoothing 0.1, AdamW, and prints validation
accuracy and seconds. The table in nbs/02_train.ipynb comes from this script.

    python bench/sweep_heads.py
"""
import time, torch
from pathlib import Path
from torch import nn
from fastai.vision.all import Learner, DataLoaders, LabelSmoothingCrossEntropyFlat, accuracy, set_seed, noop, create_head, apply_init
from leaf_fastai.data import load_split, leaf_dls
from leaf_fastai.models import find_weights, leaf_learner
from leaf_fastai.warmup import TensorBatches

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def cache(fn=HERE/'work'/'feats.pt'):
    if fn.exists(): return torch.load(fn)
    sdf, w = load_split(HERE/'work'/'split.csv'), find_weights('tf_efficientnet_lite0')
    dls = leaf_dls(DATA, sdf, 128, 64, 'flips', w.mean, w.std)
    body = leaf_learner(dls, 'tf_efficientnet_lite0', w).model[0].eval().to(memory_format=torch.channels_last)
    def feats(dl):
        A,M,Y,t = [],[],[],time.time()
        with torch.inference_mode():
            for xb,yb in dl:
                f = body(xb.as_subclass(torch.Tensor).contiguous(memory_format=torch.channels_last))
                A.append(f.mean((2,3))); M.append(f.amax((2,3))); Y.append(yb.as_subclass(torch.Tensor))
        print(f"features of {len(dl.dataset)} images: {time.time()-t:.0f} s", flush=True)
        return torch.cat(A), torch.cat(M), torch.cat(Y)
    d = dict(tr=feats(dls.valid.new(dls.train.dataset, shuffle=False, drop_last=False)), va=feats(dls.valid))
    torch.save(d, fn); return d

def run(name, head, xt, yt, xv, yv, epochs, lr, bs=256):
    set_seed(42)
    apply_init(head, nn.init.kaiming_normal_)
    l = Learner(DataLoaders(TensorBatches(xt, yt, bs, shuffle=True), TensorBatches(xv, yv, 1024)), head,
                loss_func=LabelSmoothingCrossEntropyFlat(eps=0.1), metrics=accuracy, wd=0.01)
    l.remove_cb(l.progress); l.logger = noop
    t = time.time(); l.fit_one_cycle(epochs, lr)
    print(f"{name:42s} epochs {epochs:3d}  lr {lr:<6g} bs {bs:5d}  valid acc {l.recorder.values[-1][2]:.4f}  {time.time()-t:5.1f} s", flush=True)

def main():
    d = cache()
    (At,Mt,yt),(Av,Mv,yv) = d['tr'], d['va']
    Ct,Cv,nc = torch.cat([Mt,At],1), torch.cat([Mv,Av],1), int(yt.max())+1
    run("fastai head, ps=0.5 (fastai's default)", create_head(2560, nc, pool=False), Ct, yt, Cv, yv, 15, 5e-3)
    run("fastai head, ps=0.1", create_head(2560, nc, pool=False, ps=0.1), Ct, yt, Cv, yv, 15, 1e-2)
    run("fastai head, ps=0.1", create_head(2560, nc, pool=False, ps=0.1), Ct, yt, Cv, yv, 30, 1e-2)
    run("fastai head, ps=0.1", create_head(2560, nc, pool=False, ps=0.1), Ct, yt, Cv, yv, 20, 2e-2, bs=512)
    run("fastai head on average pooling, ps=0.1", create_head(1280, nc, pool=False, ps=0.1), At, yt, Av, yv, 30, 1e-2)
    run("linear on average pooling", nn.Sequential(nn.Linear(1280, nc)), At, yt, Av, yv, 15, 5e-3)
    run("linear on average pooling", nn.Sequential(nn.Linear(1280, nc)), At, yt, Av, yv, 30, 3e-3)
    run("BatchNorm + linear on concat pooling", nn.Sequential(nn.BatchNorm1d(2560), nn.Linear(2560, nc)), Ct, yt, Cv, yv, 30, 1e-2)

if __name__ == '__main__': main()
