"""--budget end to end through the CLI (Rapid II, #12): a budget too small is refused with what it needs; a budgeted run
plans its tail epochs, and a long budget epochs on the images the warm-up's pass kept; stopped in either, --resume
finishes the plan without planning again. Budgets are wall-clock time: each is as short as its plan allows"""
import json, signal
import pandas as pd
from conftest import cli, start, stop, wait_until, state, fails_with, sigint_default, MINI

def test_budget_too_small_is_refused(tmp_path):
    "A budget that cannot hold one pass over the images says so, with what it needs, and writes nothing"
    r = cli('train', '--data', MINI, '--size', 64, '--budget', '5s', '--no-check', '--out', tmp_path/'r', '--quiet')
    fails_with(r, '--budget 5 s is too small for this run', 'Use --budget')
    assert not (tmp_path/'r').exists()

def test_budget_spent_before_the_model_is_refused_then(tmp_path):
    "A budget the start-up alone uses up (a real process: importing torch, fastai and timm takes longer than 1 s) is refused before the image check and the model, not after calibrating it"
    r = cli('train', '--data', MINI, '--size', 64, '--budget', '1s', '--out', tmp_path/'r', '--quiet', real=True)
    fails_with(r, '--budget 1 s is too small for this run:', 's are spent already (start-up and reading the labels), before any training', 'Use --budget 1m')
    assert not (tmp_path/'r').exists()

def stopped_budget_run(tmp_path, args, reached, sig):
    """Start a budgeted `train` (stderr to a file), send `sig` once `reached(state)` holds; returns (run folder, exit code, stderr, state).
    No DataLoader worker: with one, each image epoch that FitBy shortens stalls ~6 s when its worker is shut down, and a
    30 s budget runs for minutes (reported as a library bug; the worker's own stop is tested in test_resume.py)"""
    out = tmp_path/'b'
    with open(tmp_path/'stderr.txt', 'w') as log:
        p = start('train', '--data', MINI, *args, '--no-check', '--num-workers', 0, '--out', out, '--quiet', log=log, preexec_fn=sigint_default)
        ok = wait_until(lambda: reached(state(out)), p)
        rc = stop(p, sig)
    err = (tmp_path/'stderr.txt').read_text()
    assert ok, f"never reached the phase to stop in (exit {rc}): {state(out)}\n{err[-2000:]}"
    return out, rc, err, state(out)

def test_budget_run_resumes_its_plan(tmp_path):
    "SIGTERM (`kill PID`) during a budgeted run's tail epochs (one tail: several are resumed in test_tails.py); --resume finishes the planned tail epochs, without planning again"
    out, rc, err, st = stopped_budget_run(tmp_path, ('--size', 48, '--tail-bs', 4, '--budget', '30s', '--tails', 1),
                                          lambda s: s.get('phase') == 'tail', signal.SIGTERM)
    n, nb = st['tail_plan']
    assert rc == 2 and 'continue with: leaf_fastai train --resume' in err, (rc, err[-2000:])
    assert st['epochs_done'] == 1 and n >= 2, st  # stopped in the second planned epoch
    r = cli('train', '--resume', out, '--quiet', check=True)
    assert 'plan for --budget' not in r.stdout and 'tail:' not in r.stdout, r.stdout
    assert 'note: resuming a --budget 30s run: what it had planned runs as planned' in r.stdout, r.stdout  # says what it does with the clock
    h = pd.read_csv(out/'history.csv')
    assert h[h.phase == 'tail'].epoch.tolist() == list(range(n))
    assert state(out)['tail_plan'] == [n, nb]
    assert json.loads((out/'metrics.json').read_text())['plan']['tail_epochs'] == n

def test_long_budget_image_epochs_resume(tmp_path):
    """With one tail (--tails 1), a budget longer than the tail may use (--tail-cap 1, so that this holds on any machine) plans epochs on the kept
    images; Ctrl-C (SIGINT) in them stops at the next batch, and --resume finishes the plan without planning again"""
    out, rc, err, st = stopped_budget_run(tmp_path, ('--size', 48, '--budget', '30s', '--tail-cap', 1, '--tails', 1),
                                          lambda s: s.get('phase') == 'fine_tune' and s.get('epochs_done', 0) >= 1, signal.SIGINT)
    n, nb = st['image_plan']
    assert rc == 2 and 'continue with: leaf_fastai train --resume' in err, (rc, err[-2000:])
    assert st['epochs_done'] == 1 and n >= 2, st  # stopped in the second planned epoch
    cfg = json.loads((out/'config.json').read_text())['options']
    sch = json.loads((out/'schedule.json').read_text())
    assert cfg['epochs'] == 0 and 'plan' not in cfg and sch['image_epochs'] >= 1 and sch['tail_epochs'] == 1  # the schedule, not --epochs; the tail at its cap
    r = cli('train', '--resume', out, '--quiet', check=True)
    assert 'plan for --budget' not in r.stdout and 'images:' not in r.stdout, r.stdout
    h = pd.read_csv(out/'history.csv')
    assert h[h.phase == 'fine_tune'].epoch.tolist() == list(range(n))
    assert state(out)['image_plan'] == [n, nb]
    m = json.loads((out/'metrics.json').read_text())
    assert m['valid_acc'] > 0.5, m['valid_acc']  # 30 validation images, 10 species

def test_image_epochs_use_the_kept_images(mini_run, tmp_path):
    """--epochs on the images trains on the 8-bit images the warm-up's pass kept (no decoding: the shared mini run);
    --no-image-cache decodes them again"""
    kept = json.loads((mini_run[0]/'metrics.json').read_text())
    cli('train', '--data', MINI, '--size', 64, '--head-epochs', 3, '--tail-epochs', 0, '--epochs', 1, '--no-image-cache', '--no-check',
        '--out', tmp_path/'decoded', '--quiet', check=True)
    decoded = json.loads((tmp_path/'decoded'/'metrics.json').read_text())
    assert kept['image_cache_mb'] == round(300*3*96*96/2**20) and decoded['image_cache_mb'] is None  # 300 images of 3x96x96 bytes: 8 MB
    assert decoded['valid_acc'] > 0.5, decoded['valid_acc']
    assert pd.read_csv(tmp_path/'decoded'/'history.csv').phase.tolist().count('fine_tune') == 1

def test_budget_plans_the_image_size(tmp_path):
    """Without --size a budget chooses the image size (`plan_size`: 128, 144 or 160 px) and records it in its schedule;
    stopped in its tail (SIGTERM), --resume trains on at that size, and its model and `predict` use it"""
    out, rc, err, st = stopped_budget_run(tmp_path, ('--budget', '90s'), lambda s: str(s.get('phase')).startswith('tail'), signal.SIGTERM)  # 45 s left no tail on a loaded CI machine
    assert rc == 2 and 'continue with: leaf_fastai train --resume' in err, (rc, err[-2000:])
    sch = json.loads((out/'schedule.json').read_text())
    assert sch['size'] in (128, 144, 160) and sch['budget']['size'] == sch['size'], sch
    assert json.loads((out/'config.json').read_text())['options']['size'] is None  # the option as given; the schedule has the choice
    cli('train', '--resume', out, '--quiet', check=True)
    assert json.loads((out/'model.json').read_text())['size'] == sch['size']
    cli('predict', '--run', out, '--data', MINI, '--out', tmp_path/'sub.csv', '--tta', 0, check=True)
    sub = pd.read_csv(tmp_path/'sub.csv').merge(pd.read_csv(MINI/'test_labels.csv'), on='image', suffixes=('', '_true'))
    assert len(sub) == 60 and (sub.label == sub.label_true).mean() > 0.8, sub
