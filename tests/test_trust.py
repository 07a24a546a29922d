"""Trust and safety end to end through the CLI: string labels, no pickle without --trust-pickle, no silent overwrites,
nonsense options refused before any work, sane file modes. Tiny runs (TINY: 32 px, warm-up only) to stay quick.
Interrupt and resume (and the pickles a resume must not load) are in test_resume.py"""
import json, os, pickle, re, shutil, signal, subprocess
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from conftest import cli, cli_all, start, stop, wait_until, fails_with, mini_copy, copy_run, MINI, TINY

REFUSE_S = 120  # a refusal comes before any work: it needs the start-up time only (generous: 2 busy cores)

# ---------------------------------------------------------------- helpers

def refused(*args, timeout=REFUSE_S, **kw):
    "Run the CLI, failing the test (not hanging) if it starts working instead of refusing"
    try: return cli(*args, timeout=timeout, **kw)
    except subprocess.TimeoutExpired: pytest.fail(f"leaf_fastai {' '.join(map(str, args))} was still running after {timeout} s: it did not refuse up front")

def names_option(r, opt):
    "Exit 2, no traceback, and one error line that names `opt`"
    fails_with(r, opt)
    assert any(opt in l and 'error' in l for l in r.stderr.splitlines()), r.stderr[-1000:]

def str_acc(csv) -> float:
    "Accuracy of a probabilities CSV (image,label,<classes>), labels read as strings"
    df = pd.read_csv(csv, dtype=str, keep_default_na=False)
    classes = [c for c in df.columns if c not in ('image', 'label')]
    pred = np.array(classes)[df[classes].astype(float).values.argmax(1)]
    return float((pred == df.label.values).mean())

class Evil:
    "Unpickling this touches `marker`: proof that a file was unpickled"
    def __init__(self, marker): self.marker = Path(marker)
    def __reduce__(self): return (Path.touch, (self.marker,))

def plant(f, marker, how='torch'):
    f = Path(f); f.parent.mkdir(parents=True, exist_ok=True)
    if f.is_symlink() or f.exists(): f.unlink()
    if how == 'torch': torch.save(Evil(marker), f)
    else: f.write_bytes(pickle.dumps(Evil(marker), protocol=4))
    assert not Path(marker).exists()
    return f.read_bytes()

def with_test_csv(d, n=5):
    "Give data folder `d` a test.csv of `n` leaves-mini test images (copied)"
    t = pd.read_csv(MINI/'test.csv').head(n)
    (d/'images').mkdir(exist_ok=True)
    for f in t.image: shutil.copy(MINI/f, d/f)
    t.to_csv(d/'test.csv', index=False)
    return d

def member_accs(stdout, *names):
    "The valid_acc column of `ensemble`'s table for the members `names`"
    rows = {l.split()[0]: l.split() for l in stdout.splitlines() if l.split() and l.split()[0] in names}
    return {k: float(v[-2]) for k, v in rows.items()}

# ---------------------------------------------------------------- shared runs

@pytest.fixture(scope='module')
def int_data(tmp_path_factory):
    "leaves-mini with the labels '0'..'9' (and a test.csv of 5 images)"
    d, df = mini_copy(tmp_path_factory.mktemp('intlabels'))
    codes = {s: str(i) for i, s in enumerate(sorted(df.label.unique()))}
    df.assign(label=df.label.map(codes)).to_csv(d/'train.csv', index=False)
    return with_test_csv(d)

@pytest.fixture(scope='module')
def int_cv(int_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('intcv')/'intcv'
    cli('cv', '--data', int_data, '--n-folds', 2, *TINY, '--out', out, check=True)
    return out

@pytest.fixture(scope='module')
def int_run(int_cv):
    "A run with the labels '0'..'9': int_cv's first fold"
    return int_cv/'fold0'

# ---------------------------------------------------------------- 1. labels are strings

def test_report_accuracy_with_integer_labels(int_run):
    m = json.loads((int_run/'metrics.json').read_text())
    assert abs(m['valid_acc'] - str_acc(int_run/'valid_probs.csv')) < 1e-9
    r = cli('report', '--run', int_run, check=True)
    acc = re.search(r'validation accuracy ([0-9.]+)', r.stdout)
    assert acc and acc.group(1) == f"{m['valid_acc']:.4f}", (r.stdout[:500], m['valid_acc'])

def test_cv_accuracy_with_integer_labels(int_cv):
    cvm = json.loads((int_cv/'cv.json').read_text())
    acc = str_acc(int_cv/'oof_probs.csv')
    assert acc > 0 and abs(cvm['cv_acc'] - acc) < 1e-9, (cvm['cv_acc'], acc)

def test_ensemble_weighted_with_integer_labels(int_run, int_data, tmp_path):
    other = copy_run(int_run, tmp_path/'fold0b')
    r = cli('ensemble', int_run, other, '--data', int_data, '--method', 'weighted', '--tta', 0, '--out', tmp_path/'w.csv', check=True)
    assert 'nan' not in r.stdout.lower(), r.stdout
    acc = str_acc(int_run/'valid_probs.csv')
    assert member_accs(r.stdout, 'fold0', 'fold0b') == {'fold0': round(acc, 4), 'fold0b': round(acc, 4)}, r.stdout
    sub = pd.read_csv(tmp_path/'w.csv', dtype=str)
    assert len(sub) == 5 and set(sub.label) <= {str(i) for i in range(10)}

def test_ensemble_fit_with_integer_labels(int_cv, int_data, tmp_path):
    other = copy_run(int_cv, tmp_path/'intcv2')
    r = cli('ensemble', int_cv, other, '--data', int_data, '--method', 'fit', '--tta', 0, '--out', tmp_path/'f.csv', check=True)
    assert 'weights:' in r.stdout and 'nan' not in r.stdout.lower(), r.stdout
    acc = str_acc(int_cv/'oof_probs.csv')
    assert acc > 0 and member_accs(r.stdout, 'intcv', 'intcv2') == {'intcv': round(acc, 4), 'intcv2': round(acc, 4)}, r.stdout
    assert len(pd.read_csv(tmp_path/'f.csv')) == 5

def test_labels_that_look_missing(tmp_path):
    "'NA', 'None', 'nan' and 'null' are species names like any other"
    d, df = mini_copy(tmp_path, n=10)
    nas = ['NA', 'None', 'nan', 'null']
    df.assign(label=df.label.replace(dict(zip(sorted(df.label.unique())[:4], nas)))).to_csv(d/'train.csv', index=False)
    cli('train', '--data', d, *TINY, '--out', tmp_path/'run', check=True)
    assert set(nas) <= set(json.loads((tmp_path/'run'/'model.json').read_text())['classes'])
    r = cli('report', '--run', tmp_path/'run', '--data', d, '--out', tmp_path/'rep', check=True)
    assert 'validation accuracy' in r.stdout and 'on 10 images' in r.stdout, r.stdout
    pc = pd.read_csv(tmp_path/'rep'/'per_class_accuracy.csv', dtype=str, keep_default_na=False)
    assert len(pc) == 10 and set(nas) <= set(pc.label), pc

# ---------------------------------------------------------------- 2. no pickle without --trust-pickle

def test_predict_ignores_export_pkl(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path/'run')
    marker = tmp_path/'PWNED'
    plant(run/'export.pkl', marker, how='pickle')
    r = cli('predict', '--run', run, '--data', MINI, '--tta', 0, '--out', tmp_path/'s.csv', check=True)
    assert f"wrote {tmp_path/'s.csv'} (60 rows; engine: torch)" in r.stdout, r.stdout
    assert not marker.exists() and len(pd.read_csv(tmp_path/'s.csv')) == 60

# ---------------------------------------------------------------- 3. never silently overwrite

def test_overwrite_only_on_request_and_without_loading(tiny_run, tmp_path):
    """Without --overwrite, a folder holding only a (planted) checkpoint and a finished run are both refused, untouched,
    nothing unpickled; --overwrite clears a finished run (a planted best.pth and a stray file in it too) without loading what was there"""
    marker = tmp_path/'PWNED'
    planted_only = tmp_path/'planted'
    planted = plant(planted_only/'checkpoints'/'best.pth', marker)
    run = copy_run(tiny_run, tmp_path/'run')
    model = (run/'model.safetensors').read_bytes()
    plant(run/'checkpoints'/'best.pth', marker)
    (run/'junk.txt').write_text('stray')
    r1, r2 = cli_all(('train', '--data', MINI, *TINY, '--out', planted_only), ('train', '--data', MINI, *TINY, '--out', run))
    fails_with(r1, f'{planted_only} already holds a run (checkpoints)', '--overwrite')
    assert (planted_only/'checkpoints'/'best.pth').read_bytes() == planted
    fails_with(r2, f'{run} already holds a run', '--overwrite', '--resume')
    assert (run/'model.safetensors').read_bytes() == model and (run/'junk.txt').exists()
    cli('train', '--data', MINI, *TINY, '--out', run, '--overwrite', check=True)
    assert not marker.exists()
    assert not (run/'junk.txt').exists() and (run/'metrics.json').exists()
    best = run/'checkpoints'/'best.pth'
    assert best.exists() and best.read_bytes() != planted  # the warm-up's own checkpoint replaced the planted one

def test_run_folder_lock(tmp_path):
    "A second process may not write a run folder another one is writing (not even with --overwrite); a dead writer's lock is no lock"
    out = tmp_path/'run'
    with open(tmp_path/'first.txt', 'w') as log:
        p = start('train', '--data', MINI, *TINY, '--epochs', 50, '--out', out, log=log, start_new_session=True)  # killed long before its end
        try:
            assert wait_until(lambda: (out/'config.json').exists(), p), (tmp_path/'first.txt').read_text()[-2000:]
            r = cli('train', '--data', MINI, *TINY, '--out', out, '--overwrite')
            running = p.poll() is None
        finally:
            stop(p, signal.SIGKILL, group=True)
    assert running, "the first run finished before the second one started: the test proves nothing"
    fails_with(r, f'{out} is locked: process {p.pid} is writing this run folder now')
    assert (out/'config.json').exists()  # the refused --overwrite cleared nothing
    r = cli('train', '--data', MINI, *TINY, '--out', out, '--overwrite', check=True)
    assert f'was left locked by process {p.pid}, which ended without finishing (stale lock); taking it over' in r.stderr, r.stderr[-1000:]
    assert (out/'metrics.json').exists()

INPUTS = ['train.csv', 'test.csv', 'model.json']

@pytest.mark.parametrize('target', INPUTS)
def test_predict_does_not_overwrite_inputs(refusals, target):
    "--out naming one of predict's inputs: refused, the file as it was (the commands run with the refusals below)"
    r, (f, before) = refusals[f'input {target}']
    fails_with(r, f'--out {f} is an input of this command')
    assert f.read_bytes() == before

# ---------------------------------------------------------------- 4. nonsense refused before any work

NONSENSE = [('--epochs', -1), ('--lr', -1), ('--lr', 'fast'), ('--size', 0), ('--size', 7), ('--bs', 0), ('--bs', 100000),
            ('--valid-pct', 0), ('--valid-pct', 1)]
BAD_FOLDS = [1, 0, -3]

def folder_tree(root, n_species=3, n=8):
    "A folder per species with `n` leaves-mini images each; returns the species names"
    df = pd.read_csv(MINI/'train.csv')
    species = sorted(df.label.unique())[:n_species]
    for s in species:
        (root/s).mkdir(parents=True)
        for f in df[df.label == s].image.head(n): shutil.copy(MINI/f, root/s/Path(f).name)
    return species

@pytest.fixture(scope='module')
def refusals(tiny_run, tmp_path_factory):
    """Every command of this section, run once, side by side (`cli_all`: a refusal is mostly start-up): name -> (its
    CompletedProcess, the output it must not have written). Each test below checks its own"""
    d = tmp_path_factory.mktemp('refusals')
    calls = {}
    for opt, val in NONSENSE: calls[f'train {opt} {val}'] = (('train', '--data', MINI, *TINY, '--out', d/f'train{opt}{val}', opt, val), d/f'train{opt}{val}')
    for n in BAD_FOLDS: calls[f'cv {n}'] = (('cv', '--data', MINI, '--n-folds', n, *TINY, '--out', d/f'cv{n}'), d/f'cv{n}')
    split = shutil.copy(tiny_run/'split.csv', d/'split.csv')
    calls['cv split'] = (('cv', '--data', MINI, '--n-folds', 2, '--split-file', split, *TINY, '--out', d/'cvs'), d/'cvs')
    calls['tta'] = (('predict', '--run', tiny_run, '--data', MINI, '--tta', -2, '--out', d/'s.csv'), d/'s.csv')
    calls['png'] = (('stats', '--data', MINI, '--out', d/'counts'), d/'counts')
    other = copy_run(tiny_run, d/'other')
    calls['no data'] = ((('ensemble', tiny_run, other, '--out', d/'e.csv'), dict(cwd=d)), d/'e.csv')
    df = pd.read_csv(MINI/'train.csv')
    lonely = sorted(df.label.unique())[3]
    df['is_valid'] = (df.label == lonely) | (np.random.default_rng(0).random(len(df)) < 0.15)
    df.to_csv(d/'split_lonely.csv', index=False)
    calls['lonely'] = (('train', '--data', MINI, '--split-file', d/'split_lonely.csv', *TINY, '--out', d/'rl'), d/'rl')
    root = d/'leaves'
    species = folder_tree(root)
    shutil.copy(next((root/species[0]).glob('*.jpg')), root/'stray.jpg')
    calls['stray'] = (('train', '--data', root, *TINY, '--bs', 8, '--valid-pct', 0.25, '--out', d/'rs'), d/'rs')
    for target in INPUTS:
        data, _ = mini_copy(d/target, n=1); with_test_csv(data, n=2)
        run = copy_run(tiny_run, d/target/'run')
        f = (run if target == 'model.json' else data)/target
        calls[f'input {target}'] = (('predict', '--run', run, '--data', data, '--out', f), (f, f.read_bytes()))
    with_kw = lambda c: c if isinstance(c[-1], dict) else (c, {})
    try: res = cli_all(*((args, dict(kw, timeout=REFUSE_S)) for args, kw in (with_kw(c) for c, _ in calls.values())))
    except subprocess.TimeoutExpired as e: pytest.fail(f"leaf_fastai {' '.join(map(str, e.cmd[1:]))} was still running after {REFUSE_S} s: it did not refuse up front")
    return {k: (r, out) for (k, (_, out)), r in zip(calls.items(), res)} | {'lonely species': lonely}

@pytest.mark.parametrize('opt,val', NONSENSE)
def test_train_refuses_nonsense(refusals, opt, val):
    r, out = refusals[f'train {opt} {val}']
    names_option(r, opt)
    assert not out.exists()

@pytest.mark.parametrize('n', BAD_FOLDS)
def test_cv_refuses_bad_n_folds(refusals, n):
    r, out = refusals[f'cv {n}']
    names_option(r, '--n-folds')
    assert not out.exists()

def test_cv_refuses_split_file(refusals):
    r, out = refusals['cv split']
    names_option(r, '--split-file')
    assert not out.exists()

def test_predict_refuses_negative_tta(refusals):
    r, out = refusals['tta']
    names_option(r, '--tta')
    assert not out.exists()

def test_stats_out_must_be_png(refusals):
    r, out = refusals['png']
    fails_with(r, '.png')
    assert not out.exists()

def test_ensemble_needs_data_or_images(refusals):
    r, out = refusals['no data']
    fails_with(r, '--data')
    assert not out.exists()

def test_split_file_species_only_in_validation(refusals):
    r, out = refusals['lonely']
    fails_with(r, refusals['lonely species'])
    assert not out.exists()

def test_folder_per_class_stray_top_level_image(refusals):
    r, out = refusals['stray']
    fails_with(r, 'stray.jpg')
    assert 'csv' not in r.stderr.lower(), r.stderr[-1000:]
    assert not out.exists()

def test_folder_per_class_nested_folders(tmp_path):
    "Nested folders belong to their top-level species folder; they are not species of their own"
    root = tmp_path/'leaves'
    species = folder_tree(root)
    (root/species[0]/'closeups').mkdir()
    shutil.copy(next((root/species[1]).glob('*.jpg')), root/species[0]/'closeups'/'x.jpg')
    cli('train', '--data', root, *TINY, '--bs', 8, '--valid-pct', 0.25, '--out', tmp_path/'run', check=True)
    m = json.loads((tmp_path/'run'/'metrics.json').read_text())
    assert (m['n_train'], m['n_valid']) == (19, 6)  # 3 species of 8 images, the closeup counted with its top-level folder's
    assert json.loads((tmp_path/'run'/'model.json').read_text())['classes'] == species

def test_ensemble_positional_images(tiny_run, tmp_path):
    other = copy_run(tiny_run, tmp_path/'other')
    imgs = [str(MINI/f) for f in pd.read_csv(MINI/'test.csv').image[:2]]
    r = cli('ensemble', tiny_run, other, *imgs, '--tta', 0, '--out', tmp_path/'e.csv', check=True)
    sub = pd.read_csv(tmp_path/'e.csv')
    assert sub.image.tolist() == imgs

# ---------------------------------------------------------------- 5. file modes

def test_run_files_follow_umask(tiny_run):
    "Under umask 022 the run folder's files are 0644 like any other file, not mkstemp's 0600"
    for f in ('config.json', 'model.safetensors', 'metrics.json'):
        assert oct((tiny_run/f).stat().st_mode & 0o777) == oct(0o644), f
