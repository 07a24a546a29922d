"""Rapid III: a budgeted `leaf_fastai train` on the B1 split, timed as a whole process, then scored as `predict` scores it.

Each side is one `leaf_fastai train --budget B [ARGS]` process on classify-leaves with the B1 split (stratified 10%
validation, seed 42: 13,206 train / 1,467 valid; `bench/work/split.csv`, made as `b1_accuracy.py` makes it), timed
whole (start-up, imports and run folder included). Its model is then loaded as `predict` loads it and scored on the
1,467 validation images: without TTA and with `predict`'s default (`--tta 2`), through `predict_probs` (the function
`predict` writes its submission from).

    python bench/rapid3.py --budget 15m --tag v2t2 --train-args '--views 2 --tails 2'
    python bench/rapid3.py --budget 10m                      # the plan's own choice of views and tails
    python bench/rapid3.py --budget none                     # the default run, no budget

Results go to bench/results/rapid3_<budget>[_tag].json. Run one at a time on a quiet machine.
"""
import argparse, json, os, sys, time, platform, subprocess, shlex
from pathlib import Path
import numpy as np
sys.path.insert(0, str(Path(__file__).parent))

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def split_file():
    fn = HERE/'work'/'split.csv'
    if not fn.exists():
        from b1_accuracy import make_split
        make_split(DATA, 1.)
    return fn

def score(run):
    "Accuracy of the run's model on its validation images, without TTA and with `predict`'s default TTA, and the seconds each took"
    from leaf_fastai.predict import load_run, predict_probs
    from leaf_fastai.rundir import RunDir
    v = RunDir(run).read_split().query('is_valid')
    items,labels = [DATA/f for f in v.image], v.label.astype(str).to_numpy()
    learn,res = load_run(run),{}
    for tta in (0, 2):
        t0 = time.time()
        p = predict_probs(learn, items, tta=tta)
        res[f'acc_tta{tta}'] = float((p.columns.to_numpy()[p.to_numpy().argmax(1)]==labels).mean())
        res[f'predict_s_tta{tta}'] = time.time()-t0
    return res

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--budget', default='15m', help="e.g. 5m, 15m; 'none': the default run, without --budget"); p.add_argument('--train-args', default=''); p.add_argument('--tag', default='')
    p.add_argument('--score-only', action='store_true', help='score the run folder of an earlier run of this side again')
    a = p.parse_args()
    name = f"rapid3_{'default' if a.budget=='none' else a.budget}{'_'+a.tag if a.tag else ''}"
    out = HERE/'work'/name
    cmd = [str(Path(sys.executable).parent/'leaf_fastai'), 'train', '--data', str(DATA), '--split-file', str(split_file()), '--out', str(out),
           '--overwrite', '--quiet', *([] if a.budget=='none' else ['--budget', a.budget]), *shlex.split(a.train_args)]
    res = dict(command='python bench/rapid3.py ' + ' '.join(map(shlex.quote, sys.argv[1:])), date=time.strftime('%Y-%m-%d %H:%M'),
               machine=platform.processor() or platform.machine(), train=' '.join(['leaf_fastai']+[os.path.relpath(a, HERE.parent) if a.startswith('/') else a for a in cmd[1:]]))
    if not a.score_only:
        t0 = time.time()
        subprocess.run(cmd, check=True)
        res['train_wall_s'] = time.time()-t0
    m = json.loads((out/'metrics.json').read_text())
    sched = json.loads((out/'schedule.json').read_text())
    res.update(valid_acc=m['valid_acc'], run_clock_s=m['total_s'], views=sched.get('views', 1), tails=sched.get('tails', 1),
               cut=sched['cut'], size=sched.get('size') or json.loads((out/'config.json').read_text())['options']['size'], plan=m.get('plan'), **score(out))
    print(json.dumps({k:v for k,v in res.items() if k!='plan'}, indent=1))
    (HERE/'results'/f'{name}.json').write_text(json.dumps(res, indent=1, default=float)+'\n')

if __name__=='__main__': main()
