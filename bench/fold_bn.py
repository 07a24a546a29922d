"""Speed of the features pass with BatchNorm folded into the convolutions (`fold_bn`) against the unfolded body.

tf_efficientnet_lite0 with its ImageNet weights, eval mode, channels-last, one batch of real classify-leaves images
(decoded once, so only the forward pass is timed), 128 px. The two bodies alternate for `--rounds` rounds of `--steps`
forward passes each, so machine noise hits both alike; prints img/s per round and the ratio of the medians, and writes
them to bench/results/fold_bn.txt.

    python bench/fold_bn.py
"""
import argparse, time, statistics, sys, torch, pandas as pd
from pathlib import Path
from leaf_fastai.data import read_labels, leaf_dls
from leaf_fastai.models import find_weights, leaf_learner, fold_bn

DATA = Path(__file__).parent.parent.parent/'shared'/'data'/'classify-leaves'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--bs', type=int, default=32); p.add_argument('--size', type=int, default=128)
    p.add_argument('--rounds', type=int, default=4); p.add_argument('--steps', type=int, default=10)
    a = p.parse_args()
    w = find_weights('tf_efficientnet_lite0')
    df = read_labels(DATA).head(a.bs)
    df = pd.concat([df.assign(is_valid=False), df.assign(is_valid=True)])  # one batch of images, for both loaders
    dls = leaf_dls(DATA, df, a.size, a.bs, 'flips', w.mean, w.std, num_workers=0)
    body = leaf_learner(dls, 'tf_efficientnet_lite0', w).model[0].eval().to(memory_format=torch.channels_last)
    x = dls.valid.one_batch()[0].as_subclass(torch.Tensor).contiguous(memory_format=torch.channels_last)
    folded = fold_bn(body, x[:4]).to(memory_format=torch.channels_last)
    assert folded is not body, "fold_bn did not fold this body"
    lines = [' '.join(['python']+sys.argv)]
    def say(t): print(t, flush=True); lines.append(t)
    with torch.no_grad():
        say(f"max |difference| of the features: {(body(x)-folded(x)).abs().max():.2e}")
        speed = {'unfolded': [], 'folded': []}
        for r in range(a.rounds):
            for name, m in (('unfolded', body), ('folded', folded)):
                m(x); t = time.perf_counter()
                for _ in range(a.steps): m(x)
                speed[name].append(a.steps*a.bs/(time.perf_counter()-t))
            say(f"round {r}: unfolded {speed['unfolded'][-1]:.1f} img/s, folded {speed['folded'][-1]:.1f} img/s")
    mu, mf = statistics.median(speed['unfolded']), statistics.median(speed['folded'])
    say(f"median: unfolded {mu:.1f} img/s, folded {mf:.1f} img/s, ratio {mf/mu:.2f}")
    (Path(__file__).parent/'results'/'fold_bn.txt').write_text('\n'.join(lines)+'\n')

if __name__ == '__main__': main()
