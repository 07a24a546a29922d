"""Rapid II sweep on a stratified quarter of the data: where to cut the trunk, how many cached views, how many tail
epochs, flips or flips + 90° turns of the cached maps, a flipped view at prediction, and two tails from one trunk cache
(other seeds, averaged) against one tail of twice the epochs.

The B1 split with 25% of its training images (stratified, `b1_accuracy.make_split(frac=0.25)`: 3,301 train, all
1,467 validation images), tf_efficientnet_lite0 with its ImageNet weights, 128 px, the library's own pieces
(`head_warmup(cut=...)`, `tail_learner`, fastai's `fit_one_cycle`, body 1e-3 / head 2e-3, batch 64, BatchNorm in eval).
Per cut: one pass (training and validation images, plus a pass over the validation images flipped left-right),
the head warm-up, then each tail variant from the same warmed-up weights. Seconds are wall seconds of this process.

    python bench/sweep_tail.py --out sweep_tail.json
"""
import argparse, json, sys, time, platform, copy
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import make_split, DATA, HERE
from fastai.vision.all import set_seed, noop
from leaf_fastai.data import leaf_dls
from leaf_fastai.models import find_weights, leaf_learner, fold_bn
from leaf_fastai.warmup import head_warmup, tail_learner, dihedral

@torch.no_grad()
def flipped_maps(learn, split):
    "The trunk's output for each validation image flipped left-right (a true flipped view, not flipped maps)"
    trunk,out = None,[]
    for xb,_ in learn.dls.valid:
        xb = xb.as_subclass(torch.Tensor).flip(3).contiguous(memory_format=torch.channels_last)
        if trunk is None: trunk = fold_bn(split[0], xb[:4]).to(memory_format=torch.channels_last)
        out.append(trunk(xb).half())
    return torch.cat(out)

@torch.no_grad()
def probs(tl, maps):
    tl.model.eval()
    return torch.cat([tl.model(maps[i:i+256].float().contiguous(memory_format=torch.channels_last)).softmax(1) for i in range(0, len(maps), 256)])

def acc(p, y): return float((p.argmax(1)==y).float().mean())

def tail(learn, cache, state, epochs, seed, turns=False, lr=2e-3):
    learn.model.load_state_dict(state)
    set_seed(seed)
    tl = tail_learner(learn, cache, 64, flips=dihedral if turns else True)  # turns: flips and a transpose of each map, at random
    tl.remove_cb(tl.progress); tl.logger = noop
    t = time.time()
    tl.fit_one_cycle(epochs, slice(lr/2, lr))
    return tl, time.time()-t

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cuts', default='5,6,7'); p.add_argument('--out', default='sweep_tail.json')
    p.add_argument('--frac', type=float, default=0.25)
    a = p.parse_args()
    torch.set_num_threads(2)
    split_file, sdf = make_split(DATA, a.frac, fn=HERE/'work'/'split_quarter.csv')
    print(f"split: {(~sdf.is_valid).sum()} train / {sdf.is_valid.sum()} valid images", flush=True)
    w = find_weights('tf_efficientnet_lite0')
    res = []
    def log(**r):
        res.append(r); print(json.dumps(r), flush=True)
    for cut in map(int, a.cuts.split(',')):
        for views in ((1,2) if cut==6 else (1,)):
            set_seed(42)
            dls = leaf_dls(DATA, sdf, 128, 32, 'flips', w.mean, w.std)
            learn = leaf_learner(dls, 'tf_efficientnet_lite0', w)
            t = time.time()
            hl = head_warmup(learn, 15, 1e-2, views=views, quiet=True, cut=cut)
            warm_s = time.time()-t
            c = hl.cache
            t = time.time(); mvf = flipped_maps(learn, c.split); flip_s = time.time()-t
            state = copy.deepcopy(learn.model.state_dict())
            yv = c.yv
            log(cut=cut, views=views, phase='warm-up', seconds=round(warm_s, 1), head_acc=float(hl.recorder.values[-1][2]),
                map_shape=list(c.mt.shape[1:]), cache_mb=round(c.mt.nbytes/2**20), flipped_valid_pass_s=round(flip_s, 1))
            plans = [dict(epochs=4), dict(epochs=8)] if views==1 else [dict(epochs=2), dict(epochs=4)]
            if cut==6 and views==1: plans += [dict(epochs=4, seed=1), dict(epochs=8, turns=True), dict(epochs=12)]
            P = {}
            for pl in plans:
                tl,s = tail(learn, c, state, pl['epochs'], pl.get('seed', 42), pl.get('turns', False))
                p0,pf,pm = probs(tl, c.mv),probs(tl, mvf),probs(tl, c.mv.flip(3))
                P[(pl['epochs'], pl.get('seed', 42), pl.get('turns', False))] = (p0, pf)
                log(cut=cut, views=views, **pl, tail_s=round(s, 1), acc=acc(p0, yv), acc_flip_view=acc((p0+pf)/2, yv), acc_flipped_maps=acc((p0+pm)/2, yv))
            if (4,1,False) in P:  # two tails of 4 epochs from one cache, averaged (with and without the flipped view)
                (a0,af),(b0,bf) = P[(4,42,False)],P[(4,1,False)]
                log(cut=cut, views=views, two_tails='4+4 epochs, seeds 42 and 1', acc=acc(a0+b0, yv), acc_flip_view=acc(a0+af+b0+bf, yv))
            del learn, hl, c, state, P
    meta = dict(command=' '.join(['python']+sys.argv), machine=f"{platform.processor() or platform.machine()}, 2 cores", date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/a.out).write_text(json.dumps(dict(meta=meta, results=res), indent=2))

if __name__ == '__main__': main()
