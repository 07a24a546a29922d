"""Profile of the features warm-up: where the seconds of its one pass over the images go.

Runs the warm-up's features pass (`head_inputs`) over the first `--n` training images of the B1 split with
torch.profiler, and prints (1) wall time split into waiting for batches (JPEG decode, resize, collation in the
DataLoader workers) and the body's forward pass, (2) the top operators by CPU time. Writes bench/results/profile_warmup.txt.

    python bench/profile_warmup.py --n 960
"""
import argparse, sys, time, io, contextlib
from pathlib import Path
import torch
from torch.profiler import profile, ProfilerActivity
from leaf_fastai.data import load_split, leaf_dls
from leaf_fastai.models import find_weights, leaf_learner

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--n', type=int, default=960); p.add_argument('--bs', type=int, default=32); a = p.parse_args()
    sdf = load_split(HERE/'work'/'split.csv')
    sdf = sdf[~sdf.is_valid].head(a.n).assign(is_valid=False)
    sdf.loc[sdf.index[:a.bs], 'is_valid'] = True  # leaf_dls needs a validation set; the pass runs over the training rows
    w = find_weights('tf_efficientnet_lite0')
    dls = leaf_dls(DATA, sdf, 128, a.bs, 'flips', w.mean, w.std)
    learn = leaf_learner(dls, 'tf_efficientnet_lite0', w)
    body, pool = learn.model[0].eval().to(memory_format=torch.channels_last), learn.model[1][:2]
    dl = dls.valid.new(dls.train.dataset, shuffle=False, drop_last=False)
    wait = fwd = 0.
    with profile(activities=[ProfilerActivity.CPU]) as prof, torch.no_grad():
        t = time.perf_counter(); n = 0
        for xb, yb in dl:
            t1 = time.perf_counter(); wait += t1-t
            pool(body(xb.as_subclass(torch.Tensor).contiguous(memory_format=torch.channels_last))); n += len(xb)
            t = time.perf_counter(); fwd += t-t1
    total = wait+fwd
    lines = [' '.join(['python']+sys.argv), '',
             f"{n} images in {total:.1f} s = {n/total:.1f} img/s",
             f"waiting for batches (decode, resize, collate): {wait:.1f} s ({wait/total:.0%})",
             f"body forward + pooling: {fwd:.1f} s ({fwd/total:.0%}) = {n/fwd:.1f} img/s", '',
             prof.key_averages().table(sort_by='cpu_time_total', row_limit=15)]
    txt = '\n'.join(lines); print(txt)
    (HERE/'results'/'profile_warmup.txt').write_text(txt)

if __name__ == '__main__': main()
