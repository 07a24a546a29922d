"""Rapid II (#12) end to end through the CLI: a long budget goes on to epochs on the images the pass kept, and a budgeted
run stopped in those epochs resumes its plan"""
import json, signal, subprocess
import pandas as pd
from conftest import cli, MINI
from test_trust import start, wait_until

def _state(run):
    try: return json.loads((run/'state.json').read_text())
    except (FileNotFoundError, json.JSONDecodeError): return {}

def test_long_budget_image_epochs_resume(tmp_path):
    "A budget longer than the tail may use (--tail-cap 1, so that this holds on any machine) plans epochs on the kept images; SIGTERM in them, --resume finishes the plan without planning again"
    out = tmp_path/'b'
    with open(tmp_path/'stderr.txt', 'w') as log:
        p = start('train', '--data', MINI, '--size', 64, '--budget', '75s', '--tail-cap', 1, '--out', out, '--quiet', log=log,
                  preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        reached = wait_until(lambda: _state(out).get('phase') == 'fine_tune' and _state(out).get('epochs_done', 0) >= 1, p, 600)
        if p.poll() is None: p.send_signal(signal.SIGTERM)
        try: p.wait(timeout=120)
        except subprocess.TimeoutExpired: p.kill(); p.wait()
    err = (tmp_path/'stderr.txt').read_text()
    st = _state(out)
    n, nb = st['image_plan']
    assert reached and p.returncode == 2 and 1 <= st['epochs_done'] < n, (p.returncode, st, err[-2000:])
    cfg = json.loads((out/'config.json').read_text())['options']
    assert cfg['epochs'] == 0 and cfg['plan']['image_epochs'] >= 1 and cfg['plan']['tail_epochs'] >= 1  # the plan, not --epochs
    r = cli('train', '--resume', out, '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'plan for --budget' not in r.stdout and 'images:' not in r.stdout
    h = pd.read_csv(out/'history.csv')
    assert h[h.phase == 'fine_tune'].epoch.tolist() == list(range(n))
    assert json.loads((out/'state.json').read_text())['image_plan'] == [n, nb]
    m = json.loads((out/'metrics.json').read_text())
    assert m['valid_acc'] > 0.5, m['valid_acc']  # 30 validation images, 10 species

def test_image_epochs_use_the_kept_images(tmp_path):
    "--epochs on the images trains on the 8-bit images the warm-up's pass kept (no decoding); --no-image-cache decodes them again"
    for name, extra in (('kept', []), ('decoded', ['--no-image-cache'])):
        cli('train', '--data', MINI, '--size', 64, '--tail-epochs', 0, '--epochs', 1, '--head-epochs', 3, '--out', tmp_path/name, '--quiet', *extra, check=True)
    kept, decoded = (json.loads((tmp_path/n/'metrics.json').read_text()) for n in ('kept', 'decoded'))
    assert kept['image_cache_mb'] >= 3 and decoded['image_cache_mb'] is None  # 270 images of 3x64x64 bytes: 3.3 MB
    assert kept['valid_acc'] > 0.5 and decoded['valid_acc'] > 0.5, (kept['valid_acc'], decoded['valid_acc'])
