"""B2: training and inference throughput, leaf_fastai's learner against the plain loop, side by side.

Same real images (classify-leaves), tf_efficientnet_lite0, 128 px, batch 32, channels-last on both sides.
- train, JPEG: one epoch over N images, decode + resize + augmentation included, timed from first to last batch;
- train, decoded: the same number of steps on tensors already in memory, so only the framework overhead differs;
- inference: a pass over the images (decode included);
- TTA: fastai's `Learner.tta(n=4)` as a multiple of one plain inference pass.

    python bench/b2_throughput.py [--n 1280]
"""
import argparse, json, sys, time, platform
from pathlib import Path
import pandas as pd, torch, timm
from torch import nn
from torch.utils.data import DataLoader
from fastai.vision.all import Callback, DataLoaders, Learner, set_seed
sys.path.insert(0, str(Path(__file__).parent))
import plain_loop
from leaf_fastai.data import read_labels, leaf_dls
from leaf_fastai.models import find_weights, leaf_learner
from leaf_fastai.train import _device_cbs
from leaf_fastai.callbacks import BnEval
from leaf_fastai.predict import predict_probs

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

class TrainTimer(Callback):
    "Seconds spent in training batches (first batch excluded: warm-up)"
    def before_fit(self): self.secs,self.n = 0.,0
    def before_batch(self):
        if self.training: self.t0 = time.perf_counter()
    def after_batch(self):
        if self.training and self.iter>0: self.secs += time.perf_counter()-self.t0; self.n += len(self.yb[0])
    def before_epoch(self): self.ep0 = time.perf_counter()
    def after_train(self): self.wall = time.perf_counter()-self.ep0

def leaf_side(data, sdf, size, bs, w):
    set_seed(42)
    dls = leaf_dls(data, sdf, size, bs, 'flips', w.mean, w.std)
    learn = leaf_learner(dls, 'tf_efficientnet_lite0', w)
    _device_cbs(learn, True, False); learn.unfreeze()
    timer = TrainTimer()
    with learn.no_bar(), learn.no_logging(): learn.fit_one_cycle(1, slice(2e-4, 5e-4), cbs=[timer, BnEval()])
    return learn, timer

def decoded_steps(model, xb, yb, steps, opt, loss_fn):
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = loss_fn(model(xb), yb); opt.zero_grad(); loss.backward(); opt.step()
    return time.perf_counter()-t0

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=str(DATA)); p.add_argument('--n', type=int, default=1280)
    p.add_argument('--size', type=int, default=128); p.add_argument('--bs', type=int, default=32)
    a = p.parse_args()
    tr = read_labels(a.data).iloc[:a.n]
    df = pd.concat([tr, tr.iloc[:a.bs*2]], ignore_index=True)  # a small validation set of seen classes: it is not timed
    df['is_valid'] = [False]*a.n + [True]*(len(df)-a.n)
    split = HERE/'work'/'b2_split.csv'; split.parent.mkdir(exist_ok=True); df.to_csv(split, index=False)
    w = find_weights('tf_efficientnet_lite0')
    res = {}
    # training over JPEGs
    r = plain_loop.run(data=a.data, split_file=str(split), epochs=1, size=a.size, bs=a.bs)
    res['plain_train_jpeg'] = r['train_images_per_s']
    learn, timer = leaf_side(a.data, df, a.size, a.bs, w)
    res['leaf_train_jpeg'] = a.n/timer.wall
    # training on decoded tensors: framework overhead only
    xb,yb = learn.dls.one_batch()
    xb,yb = xb.as_subclass(torch.Tensor).contiguous(memory_format=torch.channels_last), yb.as_subclass(torch.Tensor)
    steps = a.n//a.bs
    m = timm.create_model('tf_efficientnet_lite0', num_classes=176).to(memory_format=torch.channels_last).train()
    opt = torch.optim.AdamW(m.parameters(), 1e-4); decoded_steps(m, xb, yb, 2, opt, nn.CrossEntropyLoss(label_smoothing=0.1))
    res['plain_train_decoded'] = steps*a.bs/decoded_steps(m, xb, yb, steps, opt, nn.CrossEntropyLoss(label_smoothing=0.1))
    fake = [(xb,yb)]*steps
    dls2 = DataLoaders(fake, fake[:1])
    l2 = Learner(dls2, learn.model, loss_func=learn.loss_func); _device_cbs(l2, True, False)
    t2 = TrainTimer()
    with l2.no_bar(), l2.no_logging(): l2.fit(1, 1e-4, cbs=[t2, BnEval()])
    res['leaf_train_decoded'] = t2.n/t2.secs
    # inference and TTA, over JPEGs
    items = [Path(a.data)/f for f in df.image[:a.n]]
    learn.meta = dict(classes=list(learn.dls.vocab))
    t0 = time.perf_counter(); predict_probs(learn, items); t_plain = time.perf_counter()-t0
    res['leaf_infer_jpeg'] = a.n/t_plain
    t0 = time.perf_counter(); predict_probs(learn, items, tta=4); res['tta4_cost_x'] = (time.perf_counter()-t0)/t_plain
    pm = timm.create_model('tf_efficientnet_lite0', num_classes=176).to(memory_format=torch.channels_last).eval()
    ds = plain_loop.LeafDataset(df.iloc[:a.n], a.data, sorted(df.label.unique()), plain_loop.T.Compose([plain_loop.T.Resize((a.size,a.size)), plain_loop.T.ToTensor(), plain_loop.T.Normalize(w.mean, w.std)]))
    t0 = time.perf_counter()
    with torch.no_grad():
        for x,_ in DataLoader(ds, batch_size=64, num_workers=2): pm(x.to(memory_format=torch.channels_last))
    res['plain_infer_jpeg'] = a.n/(time.perf_counter()-t0)
    res['train_ratio_jpeg'] = res['leaf_train_jpeg']/res['plain_train_jpeg']
    res['train_ratio_decoded'] = res['leaf_train_decoded']/res['plain_train_decoded']
    res['infer_ratio'] = res['leaf_infer_jpeg']/res['plain_infer_jpeg']
    meta = dict(command=' '.join(['python']+sys.argv), n_images=a.n, size=a.size, bs=a.bs, date=time.strftime('%Y-%m-%d %H:%M'))
    (HERE/'results').mkdir(exist_ok=True)
    (HERE/'results'/'b2.json').write_text(json.dumps(dict(meta=meta, results=res), indent=2))
    for k,v in res.items(): print(f"{k:<22}{v:>9.2f}")

if __name__ == '__main__': main()
