"""B1: accuracy at equal epochs, leaf_fastai against the seed-style plain loop, side by side in one run.

Both sides: classify-leaves train.csv, the same stratified 10% validation split (seed 42, saved to
bench/work/split.csv and read by both), tf_efficientnet_lite0 with its ImageNet weights, 128 px, batch 32.
The plain loop trains 3 epochs. leaf_fastai spends one pass over the data on its features warm-up, then: side `leaf`
trains `--epochs`-1 = 2 unfrozen epochs (3 passes, as the plain loop), side `leaf1` 1 epoch (the default of `train` until
the tail epochs; these sides run with `tail_epochs=0`),
side `leaf1_frac` is `leaf1` with a features warm-up on a stratified `--warmup-frac` of the training images,
side `leaf1_final` is `leaf1` with its unfrozen epoch (and validation) at `--final-size` px (progressive resizing),
side `fastai_frozen` runs fastai's frozen epoch of `fine_tune` with fastai's defaults.

    python bench/b1_accuracy.py --sides plain,leaf,leaf1,fastai_frozen   # full: 13,206 train / 1,467 valid images
    python bench/b1_accuracy.py --quick    # 25% of the training images (all validation images)
    python bench/b1_accuracy.py --sides fastai_frozen,leaf1,leaf1_frac --warmup-frac 0.25 --out b1_warmup.json
    python bench/b1_accuracy.py --sides leaf1_final --final-size 160 --out b1_final160.json
    python bench/b1_accuracy.py --sides budget5m,budget15m,budget10m,tail,leaf1_old --out b1_budget.json
    python bench/b1_accuracy.py --sides budget5m --train-args '--cut 7' --tag _cut7 --out b1_budget5m_cut7.json

The sides `tail` (today's default: warm-up + 4 tail epochs on the cached trunk), `budgetXX` (`--budget XX`) and
`leaf1_old` (the default before the tail: warm-up + one unfrozen epoch on the images) run `leaf_fastai train` as a
process, timed whole (imports, checks and run folder included); their images/s count validation time too.
"""
import argparse, json, sys, time, platform, subprocess
from pathlib import Path
import pandas as pd
from sklearn.model_selection import train_test_split
sys.path.insert(0, str(Path(__file__).parent))
import plain_loop
from leaf_fastai.data import read_labels, split_leaves, save_split
from leaf_fastai.train import train

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def make_split(data, frac, seed=42, fn=HERE/'work'/'split.csv'):
    "The shared split: stratified 10% validation; a stratified `frac` of the rest for training"
    sdf = split_leaves(read_labels(data), valid_pct=0.1, seed=seed)
    if frac < 1:
        tr = sdf[~sdf.is_valid]
        keep,_ = train_test_split(tr.index, train_size=frac, stratify=tr.label, random_state=seed)
        sdf = sdf.loc[sorted(set(keep)|set(sdf.index[sdf.is_valid]))].reset_index(drop=True)
    save_split(sdf, fn)
    return fn, sdf

def run_leaf(name, data, split_file, **kw):
    out = HERE/'work'/name
    kw.setdefault('tail_epochs', 0)  # these sides measure the unfrozen epochs on the images
    t0 = time.time()
    train(data, split_file=split_file, out=out, quiet=True, overwrite=True, **kw)
    wall = time.time()-t0
    m = json.loads((out/'metrics.json').read_text())
    h = pd.read_csv(out/'history.csv')
    head = h[h.phase.isin(['head_warmup','frozen'])]
    n_passes = kw.get('epochs', 1) + (1 if kw.get('warmup','features')=='features' else kw.get('freeze_epochs', 0))
    return dict(side=name, valid_acc=m['valid_acc'], total_seconds=wall, warmup_seconds=m['warmup_s'], train_seconds=m['train_s'],
                warmup_acc=float(head.accuracy.iloc[-1]) if len(head) else None, n_train=m['n_train'], n_valid=m['n_valid'],
                train_images_per_s=m['n_train']*kw.get('epochs',1)/m['train_s'] if m['train_s'] else None,
                passes_over_data=n_passes, options=kw, history=h.query("phase=='fine_tune'").accuracy.round(4).tolist())

def run_cli(name, data, split_file, *args):
    "A `leaf_fastai train` process, timed whole (start-up and imports included), as a user runs it"
    out = HERE/'work'/name
    cmd = [str(Path(sys.executable).parent/'leaf_fastai'), 'train', '--data', str(data), '--split-file', str(split_file), '--out', str(out), '--overwrite', *args]
    t0 = time.time()
    subprocess.run(cmd, check=True)
    wall = time.time()-t0
    m = json.loads((out/'metrics.json').read_text())
    h = pd.read_csv(out/'history.csv')
    st = json.loads((out/'state.json').read_text())
    n,nb = st.get('tail_plan') or (0, 0)
    nb = nb or m['n_train']//64
    seen = sum((m.get('plan') or {}).get('tail_sizes') or [nb]*n)*64  # images the tail trained on (FitBy sizes the epochs of a budget)
    head = h[h.phase=='head_warmup']
    return dict(side=name, command=' '.join(['leaf_fastai']+cmd[1:]), valid_acc=m['valid_acc'], total_seconds=wall, run_clock_seconds=m['total_s'],
                tail_seconds=m.get('tail_s'), tail_epochs=n, tail_batches=nb, tail_images_per_s=(seen/m['tail_s'] if n and m.get('tail_s') else None),
                unfrozen_images_per_s=(m['n_train']/m['train_s'] if m['train_s']>1 else None),
                warmup_acc=float(head.accuracy.iloc[-1]) if len(head) else None, n_train=m['n_train'], n_valid=m['n_valid'], plan=m.get('plan'),
                history=h.query("phase=='tail'").accuracy.round(4).tolist())

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', default=str(DATA)); p.add_argument('--quick', action='store_true')
    p.add_argument('--epochs', type=int, default=3, help='passes over the training data, each side')
    p.add_argument('--size', type=int, default=128); p.add_argument('--bs', type=int, default=32)
    p.add_argument('--sides', default='plain,leaf,leaf1', help='comma list of: plain, leaf (warm-up + 2 epochs), leaf1 (warm-up + 1 epoch: the default), leaf1_frac, leaf1_final, fastai_frozen')
    p.add_argument('--warmup-frac', type=float, default=0.25, help='fraction of the training images in the warm-up of side leaf1_frac')
    p.add_argument('--final-size', type=int, default=160, help='image size of the unfrozen epoch of side leaf1_final')
    p.add_argument('--out', default=None, help='results file name under bench/results (default b1.json, b1_quick.json)')
    p.add_argument('--train-args', default='', help="more arguments for the sides run as a `leaf_fastai train` process (tail, budgetXX, leaf1_old), e.g. '--cut 7'")
    p.add_argument('--tag', default='', help='suffix of those sides\' names (their run folders under bench/work)')
    a = p.parse_args()
    frac = 0.25 if a.quick else 1.0
    split_file, sdf = make_split(a.data, frac)
    print(f"split: {(~sdf.is_valid).sum()} train / {sdf.is_valid.sum()} valid images", flush=True)
    res = []
    more,tag = a.train_args.split(),a.tag
    for side in a.sides.split(','):
        t0 = time.time()
        if side=='plain': r = plain_loop.run(data=a.data, split_file=str(split_file), epochs=a.epochs, size=a.size, bs=a.bs)
        elif side=='leaf': r = run_leaf('leaf', a.data, split_file, epochs=a.epochs-1, size=a.size, bs=a.bs)
        elif side=='leaf1': r = run_leaf('leaf1', a.data, split_file, epochs=1, size=a.size, bs=a.bs)
        elif side=='leaf1_final': r = run_leaf('leaf1_final', a.data, split_file, epochs=1, final_size=a.final_size, size=a.size, bs=a.bs)
        elif side=='leaf1_frac': r = run_leaf('leaf1_frac', a.data, split_file, epochs=1, warmup_frac=a.warmup_frac, size=a.size, bs=a.bs)
        elif side=='tail': r = run_cli('tail'+tag, a.data, split_file, *more)  # today's default: warm-up + 4 tail epochs
        elif side.startswith('budget'): r = run_cli(side+tag, a.data, split_file, '--budget', side[len('budget'):], *more)  # e.g. budget5m
        elif side=='leaf1_old': r = run_cli('leaf1_old'+tag, a.data, split_file, '--tail-epochs', '0', '--epochs', '1', *more)  # the default before the tail
        elif side=='fastai_frozen':  # fastai's frozen epoch of fine_tune, with its defaults (base_lr 2e-3, standard augmentation)
            r = run_leaf('fastai_frozen', a.data, split_file, warmup='epochs', freeze_epochs=1, epochs=0, lr=2e-3, aug='standard', bn_eval=False, size=a.size, bs=a.bs)
        r['wall_seconds'] = time.time()-t0
        res.append(r)
        print(json.dumps({k:v for k,v in r.items() if k not in ('per_epoch','history','options')}), flush=True)
    out = HERE/'results'/(a.out or f"b1{'_quick' if a.quick else ''}.json")
    meta = dict(command=' '.join(['python']+sys.argv), machine=f"{platform.processor() or platform.machine()}, 2 cores", date=time.strftime('%Y-%m-%d %H:%M'))
    out.write_text(json.dumps(dict(meta=meta, results=res), indent=2))
    print(f"\n{'side':<14}{'valid acc':>10}{'wall s':>9}{'train img/s':>13}{'warm-up s':>11}{'warm-up acc':>13}")
    for r in res: print(f"{r['side']:<14}{r['valid_acc']:>10.4f}{r['wall_seconds']:>9.0f}{(r.get('train_images_per_s') or 0):>13.1f}"
                        f"{(r.get('warmup_seconds') or 0):>11.1f}{(r.get('warmup_acc') or 0):>13.4f}")

if __name__ == '__main__': main()
