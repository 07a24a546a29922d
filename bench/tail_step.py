"""Seconds of a tail step with the convolutions (oneDNN, channels-last) against `MatmulConvs` (their matrix products).

The tail learner of a `--budget` run (`tail_learner`: lite0 with its ImageNet weights and a 176-species head, cut after
`--cut` groups, batch 64, AdamW, BatchNorm in eval), on random maps of the trunk's real output shape for 128 px images
(the timing does not depend on their values), stepped at learning rate 0 through fastai's loop (`time_tail`: the median
of `--steps` steps). The two sides alternate for `--rounds` rounds, so machine noise hits both alike; prints each round
and the ratio of the medians, and writes them to bench/results/.

    python bench/tail_step.py --out tail_step.json
"""
import argparse, json, sys, time, platform, statistics
from pathlib import Path
import torch
from fastcore.basics import AttrDict
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import DATA, HERE
from leaf_fastai.data import leaf_dls, read_labels, split_leaves
from leaf_fastai.models import find_weights, leaf_learner
from leaf_fastai.warmup import split_trunk, tail_learner
from leaf_fastai.budget import time_tail

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--cut', type=int, default=6); p.add_argument('--size', type=int, default=128)
    p.add_argument('--rounds', type=int, default=5); p.add_argument('--steps', type=int, default=16)
    p.add_argument('--out', default='tail_step.json')
    a = p.parse_args()
    sdf = split_leaves(read_labels(DATA), valid_pct=0.1)  # the labels only: no image is read
    w = find_weights('tf_efficientnet_lite0')
    learn = leaf_learner(leaf_dls(DATA, sdf, a.size, 32, 'flips', w.mean, w.std, num_workers=0), 'tf_efficientnet_lite0', w)
    split = split_trunk(learn.model[0].model, a.cut)
    with torch.no_grad(): shape = split[0].eval()(torch.zeros(2, 3, a.size, a.size)).shape[1:]
    torch.manual_seed(0)
    maps = torch.randn(64*(a.steps+2), *shape).half(); ys = torch.arange(len(maps))%learn.dls.c
    c = AttrDict(mt=maps, yt=ys, mv=maps[:256], yv=ys[:256], split=split)
    res = dict(convs=[], matmul=[])
    for r in range(a.rounds):
        for side in res:
            res[side].append(time_tail(tail_learner(learn, c, 64, matmul=side=='matmul'), a.steps).step_s)
        print(f"round {r}: " + ', '.join(f"{k} {v[-1]*1000:.0f} ms" for k,v in res.items()), flush=True)
    med = {k: statistics.median(v) for k,v in res.items()}
    print(f"median step: convs {med['convs']*1000:.0f} ms, matmul {med['matmul']*1000:.0f} ms: {med['convs']/med['matmul']:.2f}x the steps a second")
    out = dict(meta=dict(command=' '.join(['python']+sys.argv), machine=f"{platform.machine()}, {torch.get_num_threads()} threads",
                         cpu=platform.processor(), date=time.strftime('%Y-%m-%d %H:%M'), maps=list(shape), cut=a.cut),
               step_s=res, median_s=med, ratio=med['convs']/med['matmul'])
    (HERE/'results'/a.out).write_text(json.dumps(out, indent=1))

if __name__=='__main__': main()
