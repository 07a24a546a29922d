"""Interrupt and resume end to end through the CLI: a signal stops a run at a batch boundary and says how to resume;
--resume finishes the same schedule from anywhere (another folder, a stop while the final files were written), and
refuses what it must not trust (an edited config.json, changed data, checkpoints it did not write). Budgeted runs'
resumes are in test_budget.py"""
import json, os, signal, subprocess
import pandas as pd, pytest
from conftest import cli, leaf_exe, start, stop, wait_until, state, phase, fails_with, mini_copy, copy_run, sigint_default, MINI, TINY
from test_trust import plant

# ---------------------------------------------------------------- a signal stops a run

def test_sigterm_to_the_process_group_stops_like_ctrl_c(interrupted_run):
    """SIGTERM sent to the whole process group during image epochs (a batch system's time limit, `kill -- -PGID`; the
    main process gets it too): the run stops at the next batch boundary like on Ctrl-C, keeps the last finished epoch
    and says how to resume; no DataLoader worker error"""
    r = interrupted_run
    assert r.rc == 2, (r.rc, r.err[-2000:])
    assert 'leaf_fastai train: error: Interrupted.' in r.err and 'continue with: leaf_fastai train --resume' in r.err, r.err[-2000:]
    assert 'killed by signal' not in r.err and 'exited unexpectedly' not in r.err and 'Traceback' not in r.err, r.err[-2000:]
    assert (r.state['phase'], r.state['epochs_done']) == ('fine_tune', 1)  # stopped in the second of 3 epochs
    assert not (r.dir/'metrics.json').exists()

@pytest.fixture(scope='module')
def resumed_run(interrupted_run, tmp_path_factory):
    "The interrupted run (trained from a/ with relative paths), copied and resumed from b/ as ../a/runs/r"
    base = tmp_path_factory.mktemp('resumed')
    run = copy_run(interrupted_run.dir, base/'a'/'runs'/'r')
    b = base/'b'; b.mkdir()
    return run, b, cli('train', '--resume', '../a/runs/r', '--quiet', cwd=b)

def test_resume_relative_path_from_another_folder(resumed_run):
    "Trained from a/ with relative --data and --out; resumed from b/ as ../a/runs/r: the same 3-epoch schedule, finished"
    run, b, r = resumed_run
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == f'run folder: {b}/../a/runs/r', r.stdout[-500:]  # the folder as given, made absolute
    h = pd.read_csv(run/'history.csv')
    assert h[h.phase == 'fine_tune'].epoch.tolist() == [0, 1, 2]
    m, hw, ft = json.loads((run/'metrics.json').read_text()), h[h.phase == 'head_warmup'], h[h.phase == 'fine_tune']
    assert abs(m['valid_acc'] - max(hw.accuracy.iloc[-1], *ft.accuracy)) < 1e-6, (m['valid_acc'], h.tail(4))  # the best: the warmed-up head's or an epoch's
    assert m['valid_acc'] > 0.2, m['valid_acc']  # 32 px, 10 species: chance is 0.1
    assert not list(b.iterdir()), list(b.iterdir())  # everything went into the run folder

# ---------------------------------------------------------------- stopped while the final files were written

def rewritten_final_files(run, tmp_path):
    "Delete a finished run's final files, as if stopped while writing them; --resume writes them again from the same model, and predict reads them"
    acc = json.loads((run/'metrics.json').read_text())['valid_acc']
    for f in ('metrics.json', 'model.json', 'model.safetensors', 'export.pkl', 'valid_probs.csv'): (run/f).unlink()
    r = cli('train', '--resume', run, '--quiet', check=True)
    assert json.loads((run/'metrics.json').read_text())['valid_acc'] == acc, r.stdout[-1000:]
    cli('predict', '--run', run, '--data', MINI, '--tta', 0, '--out', tmp_path/'sub.csv', check=True)

def test_resume_after_stop_while_writing_the_model_in_fine_tune(resumed_run, tmp_path):
    "Stopped after the last image epoch, while the final files were written (state.json as training left it, no model.json or metrics.json): --resume writes them, the same model"
    run = copy_run(resumed_run[0], tmp_path/'run')
    rewritten_final_files(run, tmp_path)

def test_resume_after_stop_while_writing_the_model_in_tail(tmp_path):
    "The same for a run that ends with its tail epochs on the cached trunk (no image epochs): --resume writes the files from the best tail model"
    run = tmp_path/'run'
    cli('train', '--data', MINI, *TINY, '--tail-epochs', 2, '--tail-bs', 4, '--out', run, check=True)
    assert (phase(run), state(run)['epochs_done']) == ('tail', 2)
    rewritten_final_files(run, tmp_path)

def test_cv_stopped_in_its_second_fold_resumes_to_the_same_folds(tmp_path):
    """`cv --n-folds 3` stopped by SIGTERM to its process group as its second fold starts: it says to continue with `cv
    --resume` (not the fold's `train --resume`); resumed, it keeps fold 1 and gives every fold the accuracy, and every
    image the out-of-fold probabilities, of an uninterrupted `cv` with the same seed"""
    args = ('--data', MINI, '--n-folds', 3, *TINY, '--seed', 3)
    cli('cv', *args, '--out', tmp_path/'whole', check=True)
    out = tmp_path/'cut'
    with open(tmp_path/'stderr.txt', 'w') as log:
        p = start('cv', *args, '--out', out, log=log, start_new_session=True)
        reached = wait_until(lambda: (out/'fold1').exists(), p, poll=0.02)
        rc = stop(p, signal.SIGTERM, group=True)
    err = (tmp_path/'stderr.txt').read_text()
    assert reached and rc == 2, (rc, err[-2000:])
    assert f'Interrupted in fold 2 of 3' in err and f'continue with: leaf_fastai cv --resume {out}' in err, err[-2000:]
    assert (out/'fold0'/'metrics.json').exists() and not (out/'fold1'/'metrics.json').exists() and not (out/'cv.json').exists()
    fold0 = (out/'fold0'/'metrics.json').read_bytes()
    r = cli('cv', '--resume', out, check=True)
    assert 'folds done [0]' in r.stdout, r.stdout
    assert (out/'fold0'/'metrics.json').read_bytes() == fold0  # kept, not trained again
    whole, cut = (json.loads((d/'cv.json').read_text()) for d in (tmp_path/'whole', out))
    assert cut['fold_acc'] == whole['fold_acc'] and cut['cv_acc'] == whole['cv_acc'], (cut, whole)
    a, b = (pd.read_csv(d/'oof_probs.csv') for d in (tmp_path/'whole', out))
    assert a.image.tolist() == b.image.tolist()
    assert (a.drop(columns=['image', 'label']) - b.drop(columns=['image', 'label'])).abs().max().max() < 1e-6

# ---------------------------------------------------------------- a start that fails claims nothing

def test_failed_starts_leave_no_claim(tmp_path):
    "A cv refused by its data check, and a train stopped by Ctrl-C during the warm-up, leave --out as they found it: the rerun needs no --overwrite"
    d, df = mini_copy(tmp_path, n=4)
    df.assign(label=[*df.label[:-1], 'lonely']).to_csv(d/'train.csv', index=False)
    fails_with(cli('cv', '--data', d, '--n-folds', 3, '--out', tmp_path/'cv', '--quiet'), "'lonely' (1)")
    assert not (tmp_path/'cv').exists()
    out = tmp_path/'r'
    # the default DataLoader worker: a Ctrl-C that lands while it starts must not be lost
    p = subprocess.Popen([leaf_exe(), *map(str, ('train', '--data', MINI, '--size', 32, '--head-epochs', 60, '--no-check', '--out', out, '--quiet'))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=sigint_default)
    wait_until(lambda: (out/'config.json').exists(), p, 300, poll=0.02)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=300)[1]
    assert p.returncode == 130 and err.strip().splitlines()[-1] == 'leaf_fastai train: interrupted', (p.returncode, err[-1000:])  # stopped in the warm-up
    assert not out.exists(), list(out.iterdir())  # the folder it made is gone
    cli('train', '--data', MINI, *TINY, '--out', out, check=True)

# ---------------------------------------------------------------- what --resume refuses

def test_resume_refuses_edited_config_and_changed_data(tmp_path):
    "A run stopped after its warm-up: resuming after an edit of config.json's schedule, or after train.csv's labels changed, is refused; restored, it resumes"
    d, df = mini_copy(tmp_path, n=10)
    run = tmp_path/'run'
    cli('train', '--data', d, *TINY, '--epochs', 1, '--out', run, check=True)
    for f in ('metrics.json', 'model.json'): (run/f).unlink()  # as if stopped at the end (see the tests above)
    st = json.loads((run/'state.json').read_text()); st.update(phase='warmup', epochs_done=0)  # ... or right after the warm-up
    (run/'state.json').write_text(json.dumps(st))
    cfg_file = run/'config.json'; cfg = cfg_file.read_text()
    c = json.loads(cfg); c['options']['epochs'] = 2; cfg_file.write_text(json.dumps(c))
    fails_with(cli('train', '--resume', run), 'config.json was changed', "epochs: 1 -> 2")
    cfg_file.write_text(cfg)
    df.assign(label=df.label.sample(frac=1, random_state=0).values).to_csv(d/'train.csv', index=False)
    fails_with(cli('train', '--resume', run), 'changed since')
    df.to_csv(d/'train.csv', index=False)
    cli('train', '--resume', run, '--quiet', check=True)
    h = pd.read_csv(run/'history.csv')
    assert h.phase.unique().tolist() == ['head_warmup', 'fine_tune'] and (h.phase == 'fine_tune').sum() == 1
    assert json.loads((run/'metrics.json').read_text())['valid_acc'] > 0

def test_resume_does_not_unpickle_best_pth(interrupted_run, tmp_path):
    run = copy_run(interrupted_run.dir, tmp_path/'run')
    marker = tmp_path/'PWNED'
    plant(run/'checkpoints'/'best.pth', marker)
    fails_with(cli('train', '--resume', run, '--quiet'), 'best.pth', 'is not the checkpoint this run wrote')  # every checkpoint is verified before any work
    assert not marker.exists()

def test_resume_refuses_pickled_last_pth(interrupted_run, tmp_path):
    run = copy_run(interrupted_run.dir, tmp_path/'run')
    marker = tmp_path/'PWNED'
    plant(run/'checkpoints'/'last.pth', marker)
    fails_with(cli('train', '--resume', run, '--quiet'), 'last.pth', 'is not the checkpoint this run wrote')
    assert not marker.exists()

def test_resume_refuses_symlinked_checkpoints(interrupted_run, tmp_path):
    "Checkpoints that are symlinks to files outside the run folder (last.pth's target a real checkpoint) are refused, never followed or written through"
    run = copy_run(interrupted_run.dir, tmp_path/'run')
    outside = tmp_path/'outside'; outside.mkdir()
    ck = run/'checkpoints'
    (outside/'last.pth').write_bytes((ck/'last.pth').read_bytes())
    (outside/'best.pth').write_bytes(b'outside')
    before = {f: (outside/f).read_bytes() for f in ('last.pth', 'best.pth')}
    for f in ('last.pth', 'best.pth'):
        (ck/f).unlink(missing_ok=True); (ck/f).symlink_to(outside/f)
    fails_with(cli('train', '--resume', run, '--quiet'), 'is not the checkpoint this run wrote')
    assert {f: (outside/f).read_bytes() for f in before} == before
