"""Short tails on a stratified quarter: the tail's peak learning rate against its number of steps.

A tail of few steps (a short `--budget` on a slow CPU, or a small data set) did not beat the warmed-up head at the
tail's peak learning rate (head 2e-3, body half): its one-cycle has no time to come back down from the peak. This
measures peak rates for tails of 1, 2 and 4 epochs on the same cache as `sweep_tail.py` (the B1 split with a stratified
25% of its training images: 3,301 train / 1,467 valid, lite0, 128 px, cut 6, batch 64, 52 steps an epoch), each from the
same warmed-up weights, seed 42.

    python bench/sweep_tail_lr.py --out sweep_tail_lr.json
    python bench/sweep_tail_lr.py --cut 7 --plans 1:5e-4,4:1e-3,4:2e-3,8:2e-3 --out sweep_tail_lr_cut7.json   # the tail after block 5
"""
import argparse, json, sys, time, platform, copy
from pathlib import Path
import torch
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import make_split, DATA, HERE
from sweep_tail import tail, probs, acc
from fastai.vision.all import set_seed
from leaf_fastai.data import leaf_dls
from leaf_fastai.models import find_weights, leaf_learner
from leaf_fastai.warmup import head_warmup

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--plans', default='1:2e-3,1:1e-3,1:5e-4,2:2e-3,2:1e-3,2:5e-4,4:2e-3,4:1e-3')
    p.add_argument('--out', default='sweep_tail_lr.json'); p.add_argument('--frac', type=float, default=0.25)
    p.add_argument('--cut', type=int, default=6, help='timm parameter groups cached as the trunk (6: to block 4, 7: to block 5)')
    a = p.parse_args()
    torch.set_num_threads(2)
    _, sdf = make_split(DATA, a.frac, fn=HERE/'work'/'split_quarter.csv')
    w = find_weights('tf_efficientnet_lite0')
    set_seed(42)
    learn = leaf_learner(leaf_dls(DATA, sdf, 128, 32, 'flips', w.mean, w.std), 'tf_efficientnet_lite0', w)
    t = time.time(); hl = head_warmup(learn, 15, 1e-2, quiet=True, cut=a.cut); warm_s = time.time()-t
    c,res = hl.cache,[]
    def log(**r): res.append(r); print(json.dumps(r), flush=True)
    state = copy.deepcopy(learn.model.state_dict())
    log(phase='warm-up', cut=a.cut, seconds=round(warm_s, 1), head_acc=float(hl.recorder.values[-1][2]), train=len(c.mt), valid=len(c.mv))
    for pl in a.plans.split(','):
        e,lr = pl.split(':'); e,lr = int(e),float(lr)
        tl,s = tail(learn, c, state, e, 42, lr=lr)
        log(epochs=e, steps=e*len(tl.dls.train), lr=lr, tail_s=round(s, 1), acc=acc(probs(tl, c.mv), c.yv))
    meta = dict(command=' '.join(['python']+sys.argv), machine=f"{platform.processor() or platform.machine()}, 2 cores", date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results'/a.out).write_text(json.dumps(dict(meta=meta, results=res), indent=2))

if __name__ == '__main__': main()
