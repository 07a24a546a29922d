import os, subprocess, sys, shutil
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent/'shared'/'data'
MINI, LEAVES = DATA/'leaves-mini', DATA/'classify-leaves'

def pytest_collection_modifyitems(config, items):
    if MINI.exists() and LEAVES.exists(): return
    msg = f"real data not found at {DATA}"
    if os.environ.get('CI'): raise pytest.UsageError(msg + ": CI must have ../shared/data beside the project")
    for it in items: it.add_marker(pytest.mark.skip(reason=msg))

def cli(*args, check=False, timeout=600, **kw):
    "Run the installed `leaf_fastai` command; returns the CompletedProcess"
    venv = Path(sys.executable).parent/"leaf_fastai"
    exe = str(venv) if venv.exists() else shutil.which("leaf_fastai")
    r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode: raise AssertionError(f"leaf_fastai {' '.join(map(str,args))} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r

@pytest.fixture(scope='session')
def mini_run(tmp_path_factory):
    "One short training run on leaves-mini, shared by the tests that need a trained model"
    out = tmp_path_factory.mktemp('runs')/'mini'
    r = cli('train', '--data', MINI, '--size', 96, '--epochs', 1, '--out', out, '--quiet', check=True)
    return out, r
