"""Trust and safety end to end through the CLI: resume from anywhere, string labels, no pickle without --trust-pickle,
no silent overwrites, nonsense options refused before any work, sane file modes. Tiny runs (32 px, warm-up only) to stay quick"""
import json, os, pickle, re, shutil, signal, subprocess, time
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pandas as pd, pytest, torch
from conftest import cli, leaf_exe, fails_with, mini_copy, MINI

TINY = ('--size', 32, '--epochs', 0, '--head-epochs', 3, '--quiet')
REFUSE_S = 120  # a refusal comes before any work: it needs the start-up time only (generous: 2 busy cores)

# ---------------------------------------------------------------- helpers

def umask022(): os.umask(0o022)

def start(*args, cwd=None, log=None, **kw):
    "Start `leaf_fastai args` in the background, stderr to the file `log` (a pipe could fill up and block it)"
    return subprocess.Popen([leaf_exe(), *map(str, args)], cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, text=True, **kw)

def wait_until(cond, p, timeout=900):
    "Poll `cond()` until it holds (True), the process `p` ends or `timeout` s pass (False)"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond(): return True
        if p.poll() is not None: return cond()
        time.sleep(0.1)
    return False

def phase(run):
    try: return json.loads((run/'state.json').read_text()).get('phase')
    except (FileNotFoundError, json.JSONDecodeError): return None

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

def copy_run(src, dst):
    shutil.copytree(src, dst, symlinks=True)
    return dst

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

@pytest.fixture(scope='session')
def tiny_run(tmp_path_factory):
    "A finished 32 px warm-up-only run on leaves-mini, written under umask 022. Copy it before changing anything in it"
    out = tmp_path_factory.mktemp('tiny')/'tiny'
    cli('train', '--data', MINI, *TINY, '--out', out, check=True, preexec_fn=umask022)
    return out

@pytest.fixture(scope='session')
def interrupted_run(tmp_path_factory):
    """`train --out runs/r` (relative --data and --out) started in a/, stopped with SIGTERM during fine-tuning.
    Copy `.dir` with shutil.copytree before changing anything in it"""
    base = tmp_path_factory.mktemp('interrupted'); a = base/'a'; a.mkdir()
    out, errf = a/'runs'/'r', base/'stderr.txt'
    with open(errf, 'w') as log:
        p = start('train', '--data', os.path.relpath(MINI, a), '--size', 32, '--epochs', 3, '--head-epochs', 3, '--out', 'runs/r',
                  '--quiet', cwd=a, log=log, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        reached = wait_until(lambda: phase(out) == 'fine_tune', p, 1200)
        if p.poll() is None: p.send_signal(signal.SIGTERM)
        try: p.wait(timeout=120)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
    err = errf.read_text()
    assert reached, f"the run never reached its first fine-tuning epoch (exit {p.returncode}):\n{err[-2000:]}"
    return SimpleNamespace(dir=out, rc=p.returncode, err=err)

@pytest.fixture(scope='session')
def int_data(tmp_path_factory):
    "leaves-mini with the labels '0'..'9' (and a test.csv of 5 images)"
    d, df = mini_copy(tmp_path_factory.mktemp('intlabels'))
    codes = {s: str(i) for i, s in enumerate(sorted(df.label.unique()))}
    df.assign(label=df.label.map(codes)).to_csv(d/'train.csv', index=False)
    return with_test_csv(d)

@pytest.fixture(scope='session')
def int_run(int_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('intrun')/'intrun'
    cli('train', '--data', int_data, *TINY, '--out', out, check=True)
    return out

@pytest.fixture(scope='session')
def int_cv(int_data, tmp_path_factory):
    out = tmp_path_factory.mktemp('intcv')/'intcv'
    cli('cv', '--data', int_data, '--n-folds', 2, *TINY, '--out', out, check=True)
    return out

# ---------------------------------------------------------------- 1. interrupt and resume

def test_sigterm_stops_like_ctrl_c(interrupted_run):
    "SIGTERM (kill, a batch system's time limit) stops at an epoch boundary and says how to resume, like Ctrl-C"
    r = interrupted_run
    assert r.rc == 2, (r.rc, r.err[-2000:])
    assert 'leaf_fastai train --resume' in r.err and 'Traceback' not in r.err, r.err[-2000:]
    assert 1 <= json.loads((r.dir/'state.json').read_text())['epochs_done'] < 3
    assert not (r.dir/'metrics.json').exists()

def test_resume_relative_path_from_another_folder(interrupted_run, tmp_path):
    "Trained from a/ with relative --data and --out; resumed from b/ as ../a/runs/r"
    run = copy_run(interrupted_run.dir, tmp_path/'a'/'runs'/'r')
    b = tmp_path/'b'; b.mkdir()
    r = cli('train', '--resume', '../a/runs/r', '--quiet', cwd=b)
    assert r.returncode == 0, r.stderr[-2000:]
    h = pd.read_csv(run/'history.csv')
    assert h[h.phase == 'fine_tune'].epoch.tolist() == [0, 1, 2]
    assert (run/'metrics.json').exists()
    assert not list(b.iterdir()), list(b.iterdir())  # everything went into the run folder

# ---------------------------------------------------------------- 2. labels are strings

def test_report_accuracy_with_integer_labels(int_run):
    m = json.loads((int_run/'metrics.json').read_text())
    assert abs(m['valid_acc'] - str_acc(int_run/'valid_probs.csv')) < 1e-9
    r = cli('report', '--run', int_run)
    assert r.returncode == 0, r.stderr[-2000:]
    acc = re.search(r'validation accuracy ([0-9.]+)', r.stdout)
    assert acc and acc.group(1) == f"{m['valid_acc']:.4f}", (r.stdout[:500], m['valid_acc'])

def test_cv_accuracy_with_integer_labels(int_cv):
    cvm = json.loads((int_cv/'cv.json').read_text())
    acc = str_acc(int_cv/'oof_probs.csv')
    assert acc > 0 and abs(cvm['cv_acc'] - acc) < 1e-9, (cvm['cv_acc'], acc)

def test_ensemble_weighted_with_integer_labels(int_run, int_data, tmp_path):
    other = copy_run(int_run, tmp_path/'intrun2')
    r = cli('ensemble', int_run, other, '--data', int_data, '--method', 'weighted', '--out', tmp_path/'w.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'nan' not in r.stdout.lower(), r.stdout
    acc = str_acc(int_run/'valid_probs.csv')
    assert member_accs(r.stdout, 'intrun', 'intrun2') == {'intrun': round(acc, 4), 'intrun2': round(acc, 4)}, r.stdout
    sub = pd.read_csv(tmp_path/'w.csv', dtype=str)
    assert len(sub) == 5 and set(sub.label) <= {str(i) for i in range(10)}

def test_ensemble_fit_with_integer_labels(int_cv, int_data, tmp_path):
    other = copy_run(int_cv, tmp_path/'intcv2')
    r = cli('ensemble', int_cv, other, '--data', int_data, '--method', 'fit', '--out', tmp_path/'f.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'weights:' in r.stdout and 'nan' not in r.stdout.lower(), r.stdout
    acc = str_acc(int_cv/'oof_probs.csv')
    assert acc > 0 and member_accs(r.stdout, 'intcv', 'intcv2') == {'intcv': round(acc, 4), 'intcv2': round(acc, 4)}, r.stdout
    assert len(pd.read_csv(tmp_path/'f.csv')) == 5

def test_labels_that_look_missing(tmp_path):
    "'NA', 'None', 'nan' and 'null' are species names like any other"
    d, df = mini_copy(tmp_path)
    nas = ['NA', 'None', 'nan', 'null']
    df.assign(label=df.label.replace(dict(zip(sorted(df.label.unique())[:4], nas)))).to_csv(d/'train.csv', index=False)
    r = cli('train', '--data', d, *TINY, '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr[-2000:]
    assert set(nas) <= set(json.loads((tmp_path/'run'/'model.json').read_text())['classes'])
    r = cli('report', '--run', tmp_path/'run', '--data', d, '--out', tmp_path/'rep')
    assert r.returncode == 0, r.stderr[-2000:]
    pc = pd.read_csv(tmp_path/'rep'/'per_class_accuracy.csv', dtype=str, keep_default_na=False)
    assert len(pc) == 10 and set(nas) <= set(pc.label), pc

# ---------------------------------------------------------------- 3. no pickle without --trust-pickle

def test_resume_does_not_unpickle_best_pth(interrupted_run, tmp_path):
    run = copy_run(interrupted_run.dir, tmp_path/'run')
    marker = tmp_path/'PWNED'
    plant(run/'checkpoints'/'best.pth', marker)
    r = cli('train', '--resume', run, '--quiet')
    fails_with(r, 'best.pth', 'is not the checkpoint this run wrote')  # every checkpoint is verified before any work
    assert not marker.exists()

def test_resume_refuses_pickled_last_pth(interrupted_run, tmp_path):
    run = copy_run(interrupted_run.dir, tmp_path/'run')
    marker = tmp_path/'PWNED'
    plant(run/'checkpoints'/'last.pth', marker)
    fails_with(cli('train', '--resume', run, '--quiet'), 'last.pth')
    assert not marker.exists()

def test_predict_ignores_export_pkl(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path/'run')
    marker = tmp_path/'PWNED'
    plant(run/'export.pkl', marker, how='pickle')
    r = cli('predict', '--run', run, '--data', MINI, '--out', tmp_path/'s.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    assert not marker.exists() and len(pd.read_csv(tmp_path/'s.csv')) == 60

def test_new_run_over_planted_checkpoint(tmp_path):
    "A folder that is not empty is refused; --overwrite clears it without loading what was there"
    out, marker = tmp_path/'run', tmp_path/'PWNED'
    planted = plant(out/'checkpoints'/'best.pth', marker)
    fails_with(cli('train', '--data', MINI, *TINY, '--out', out), '--overwrite')
    assert not marker.exists() and (out/'checkpoints'/'best.pth').read_bytes() == planted
    r = cli('train', '--data', MINI, *TINY, '--out', out, '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]
    assert not marker.exists()
    best = out/'checkpoints'/'best.pth'
    assert not best.exists() or best.read_bytes() != planted

def test_resume_replaces_symlinked_checkpoints(interrupted_run, tmp_path):
    """Checkpoints that are symlinks to files outside the run folder get replaced, not written through.
    (last.pth's target is a real checkpoint, so the resume can run; refusing the symlink with exit 2 is fine too)"""
    run = copy_run(interrupted_run.dir, tmp_path/'run')
    outside = tmp_path/'outside'; outside.mkdir()
    ck = run/'checkpoints'
    (outside/'last.pth').write_bytes((ck/'last.pth').read_bytes())
    (outside/'best.pth').write_bytes(b'outside')
    before = {f: (outside/f).read_bytes() for f in ('last.pth', 'best.pth')}
    for f in ('last.pth', 'best.pth'):
        (ck/f).unlink(missing_ok=True); (ck/f).symlink_to(outside/f)
    r = cli('train', '--resume', run, '--quiet')
    fails_with(r, 'is not the checkpoint this run wrote')  # a link is not the file this run wrote: refused, never followed
    assert {f: (outside/f).read_bytes() for f in before} == before

# ---------------------------------------------------------------- 4. never silently overwrite

def test_finished_run_is_not_overwritten(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path/'run')
    model = (run/'model.safetensors').read_bytes()
    fails_with(cli('train', '--data', MINI, *TINY, '--out', run), '--overwrite', '--resume')
    assert (run/'model.safetensors').read_bytes() == model

def test_overwrite_clears_the_folder(tiny_run, tmp_path):
    run = copy_run(tiny_run, tmp_path/'run')
    (run/'junk.txt').write_text('stray')
    r = cli('train', '--data', MINI, *TINY, '--out', run, '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]
    assert not (run/'junk.txt').exists() and (run/'metrics.json').exists()

def test_run_folder_lock(tmp_path):
    "A second process may not write a run folder another one is writing (not even with --overwrite); a dead writer's lock is no lock"
    out = tmp_path/'run'
    with open(tmp_path/'first.txt', 'w') as log:
        p = start('train', '--data', MINI, '--size', 32, '--epochs', 3, '--head-epochs', 3, '--out', out, '--quiet',
                  log=log, start_new_session=True)
        try:
            assert wait_until(lambda: (out/'config.json').exists(), p, 900), (tmp_path/'first.txt').read_text()[-2000:]
            r = cli('train', '--data', MINI, *TINY, '--out', out, '--overwrite')
            running = p.poll() is None
        finally:
            if p.poll() is None: os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert running, "the first run finished before the second one started: the test proves nothing"
    fails_with(r)
    assert 'lock' in r.stderr.lower(), r.stderr[-1000:]
    assert (out/'config.json').exists()  # the refused --overwrite cleared nothing
    r = cli('train', '--data', MINI, *TINY, '--out', out, '--overwrite')
    assert r.returncode == 0, r.stderr[-2000:]  # may note a 'stale' lock
    assert (out/'metrics.json').exists()

@pytest.mark.parametrize('target', ['train.csv', 'test.csv', 'model.json'])
def test_predict_does_not_overwrite_inputs(tiny_run, tmp_path, target):
    d, _ = mini_copy(tmp_path); with_test_csv(d)
    run = copy_run(tiny_run, tmp_path/'run')
    f = (run if target == 'model.json' else d)/target
    before = f.read_bytes()
    fails_with(cli('predict', '--run', run, '--data', d, '--out', f))
    assert f.read_bytes() == before

# ---------------------------------------------------------------- 5. nonsense refused before any work

@pytest.mark.parametrize('opt,val', [('--epochs', -1), ('--lr', -1), ('--lr', 'fast'), ('--size', 0), ('--size', 7), ('--bs', 0),
                                     ('--bs', 100000), ('--valid-pct', 0), ('--valid-pct', 1)])
def test_train_refuses_nonsense(tmp_path, opt, val):
    r = refused('train', '--data', MINI, *TINY, '--out', tmp_path/'run', opt, val)
    names_option(r, opt)
    assert not (tmp_path/'run').exists()

@pytest.mark.parametrize('n', [1, 0, -3])
def test_cv_refuses_bad_n_folds(tmp_path, n):
    names_option(refused('cv', '--data', MINI, '--n-folds', n, *TINY, '--out', tmp_path/'cv'), '--n-folds')
    assert not (tmp_path/'cv').exists()

def test_cv_refuses_split_file(tiny_run, tmp_path):
    s = shutil.copy(tiny_run/'split.csv', tmp_path/'split.csv')
    names_option(refused('cv', '--data', MINI, '--n-folds', 2, '--split-file', s, *TINY, '--out', tmp_path/'cv'), '--split-file')
    assert not (tmp_path/'cv').exists()

def test_predict_refuses_negative_tta(tiny_run, tmp_path):
    names_option(refused('predict', '--run', tiny_run, '--data', MINI, '--tta', -2, '--out', tmp_path/'s.csv'), '--tta')
    assert not (tmp_path/'s.csv').exists()

def test_stats_out_must_be_png(tmp_path):
    fails_with(refused('stats', '--data', MINI, '--out', tmp_path/'counts'), '.png')
    assert not (tmp_path/'counts').exists()

def test_ensemble_needs_data_or_images(tiny_run, tmp_path):
    other = copy_run(tiny_run, tmp_path/'other')
    fails_with(refused('ensemble', tiny_run, other, '--out', tmp_path/'e.csv', cwd=tmp_path), '--data')
    assert not (tmp_path/'e.csv').exists()

def test_split_file_species_only_in_validation(tmp_path):
    df = pd.read_csv(MINI/'train.csv')
    lonely = sorted(df.label.unique())[3]
    rng = np.random.default_rng(0)
    df['is_valid'] = (df.label == lonely) | (rng.random(len(df)) < 0.15)
    df.to_csv(tmp_path/'split.csv', index=False)
    fails_with(refused('train', '--data', MINI, '--split-file', tmp_path/'split.csv', *TINY, '--out', tmp_path/'run'), lonely)

def folder_tree(root, n_species=3, n=8):
    "A folder per species with `n` leaves-mini images each; returns the species names"
    df = pd.read_csv(MINI/'train.csv')
    species = sorted(df.label.unique())[:n_species]
    for s in species:
        (root/s).mkdir(parents=True)
        for f in df[df.label == s].image.head(n): shutil.copy(MINI/f, root/s/Path(f).name)
    return species

def test_folder_per_class_nested_folders(tmp_path):
    "Nested folders belong to their top-level species folder; they are not species of their own"
    root = tmp_path/'leaves'
    species = folder_tree(root)
    (root/species[0]/'closeups').mkdir()
    shutil.copy(next((root/species[1]).glob('*.jpg')), root/species[0]/'closeups'/'x.jpg')
    r = cli('train', '--data', root, *TINY, '--bs', 8, '--valid-pct', 0.25, '--out', tmp_path/'run')
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads((tmp_path/'run'/'model.json').read_text())['classes'] == species

def test_folder_per_class_stray_top_level_image(tmp_path):
    root = tmp_path/'leaves'
    species = folder_tree(root)
    shutil.copy(next((root/species[0]).glob('*.jpg')), root/'stray.jpg')
    r = refused('train', '--data', root, *TINY, '--bs', 8, '--valid-pct', 0.25, '--out', tmp_path/'run')
    fails_with(r, 'stray.jpg')
    assert 'csv' not in r.stderr.lower(), r.stderr[-1000:]

def test_ensemble_positional_images(tiny_run, tmp_path):
    other = copy_run(tiny_run, tmp_path/'other')
    imgs = [str(MINI/f) for f in pd.read_csv(MINI/'test.csv').image[:2]]
    r = cli('ensemble', tiny_run, other, *imgs, '--out', tmp_path/'e.csv')
    assert r.returncode == 0, r.stderr[-2000:]
    sub = pd.read_csv(tmp_path/'e.csv')
    assert sub.image.tolist() == imgs

# ---------------------------------------------------------------- 6. file modes

def test_run_files_follow_umask(tiny_run):
    "Under umask 022 the run folder's files are 0644 like any other file, not mkstemp's 0600"
    for f in ('config.json', 'model.safetensors', 'metrics.json'):
        assert oct((tiny_run/f).stat().st_mode & 0o777) == oct(0o644), f

# ---------------------------------------------------------------- budget

def test_budget_too_small_is_refused(tmp_path):
    "A budget that cannot hold one pass over the images says so, with what it needs, and writes nothing"
    r = refused('train', '--data', MINI, '--size', 64, '--budget', '5s', '--out', tmp_path/'r', '--quiet')
    fails_with(r, '--budget', 'too small', 'Use --budget')
    assert not (tmp_path/'r').exists()

def test_budget_run_resumes_its_plan(tmp_path):
    "SIGTERM during a budgeted run's tail epochs; --resume finishes the planned tail epochs, without planning again"
    out = tmp_path/'b'
    with open(tmp_path/'stderr.txt', 'w') as log:
        p = start('train', '--data', MINI, '--size', 96, '--tail-bs', 4, '--budget', '60s', '--out', out, '--quiet', log=log,
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        reached = wait_until(lambda: phase(out) == 'tail', p, 600)
        if p.poll() is None: p.send_signal(signal.SIGTERM)
        try: p.wait(timeout=120)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
    err = (tmp_path/'stderr.txt').read_text()
    st = json.loads((out/'state.json').read_text())
    n, nb = st['tail_plan']
    assert reached and p.returncode == 2 and 1 <= st['epochs_done'] < n, (p.returncode, st, err[-2000:])
    r = cli('train', '--resume', out, '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'plan for --budget' not in r.stdout
    h = pd.read_csv(out/'history.csv')
    assert h[h.phase == 'tail'].epoch.tolist() == list(range(n))
    assert json.loads((out/'state.json').read_text())['tail_plan'] == [n, nb]
    assert json.loads((out/'metrics.json').read_text())['plan']['tail_epochs'] == n
