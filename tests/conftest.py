import os, subprocess, sys, shutil
from pathlib import Path
import pandas as pd, pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent/'shared'/'data'
MINI, LEAVES = DATA/'leaves-mini', DATA/'classify-leaves'

def pytest_collection_modifyitems(config, items):
    if MINI.exists() and LEAVES.exists(): return
    msg = f"real data not found at {DATA}"
    if os.environ.get('CI'): raise pytest.UsageError(msg + ": CI must have ../shared/data beside the project")
    for it in items: it.add_marker(pytest.mark.skip(reason=msg))

def leaf_exe() -> str:
    "The installed `leaf_fastai` command: the one beside this Python, else the one on PATH"
    venv = Path(sys.executable).parent/"leaf_fastai"
    return str(venv) if venv.exists() else shutil.which("leaf_fastai")

def cli(*args, check=False, timeout=600, env=None, **kw):
    "Run the installed `leaf_fastai` command; returns the CompletedProcess. `env`: variables to set on top of os.environ"
    if env is not None: env = {**os.environ, **{k: str(v) for k,v in env.items()}}
    r = subprocess.run([leaf_exe(), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env, **kw)
    if check and r.returncode: raise AssertionError(f"leaf_fastai {' '.join(map(str,args))} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r

@pytest.fixture(scope='session')
def mini_run(tmp_path_factory):
    "One short training run on leaves-mini, shared by the tests that need a trained model"
    out = tmp_path_factory.mktemp('runs')/'mini'
    r = cli('train', '--data', MINI, '--size', 96, '--epochs', 1, '--out', out, '--quiet', check=True)
    return out, r

def fails_with(r, *words):
    "Exit code 2, no traceback, and each of `words` in stderr"
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert 'Traceback' not in r.stderr, r.stderr[-2000:]
    for w in words: assert w in r.stderr, (w, r.stderr[-1000:])

def mini_copy(tmp_path, n=None):
    "A Kaggle-style folder with a copy of leaves-mini's train.csv and training images (`n` per species)"
    df = pd.read_csv(MINI/'train.csv')
    if n: df = df.groupby('label').head(n)
    d = tmp_path/'data'; (d/'images').mkdir(parents=True, exist_ok=True)
    for f in df.image: shutil.copy(MINI/f, d/f)
    df.to_csv(d/'train.csv', index=False)
    return d, df
