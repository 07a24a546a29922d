"""Helpers and shared trained runs for the end-to-end tests: each test runs the `leaf_fastai` command in a process of its own.

Processes. A `cli` run is forked from the worker's tests/zygote.py, a process that imported torch, fastai, timm and the
commands once (start-up is most of a short run's time), then becomes the command: `leaf_fastai.cli.main` with the
arguments, in the test's folder and environment, with its own stdout, stderr and exit code. Real `leaf_fastai`
executables: the first run a user makes (mini_run), background runs stopped by signals (`start`), torchrun, the app,
runs with their own environment variables or `preexec_fn`, `cli(..., real=True)`, and every run with
LEAF_TESTS_REAL_PROCESSES=1.

Data. The tests need the real data beside the project: ../shared/data/leaves-mini and ../shared/data/classify-leaves.
Without it, pytest stops at collection with exit code 4 and says where it looked: a run that tested nothing must not
look green. On a machine that cannot have the data (or /usr/bin/chromium, for test_app.py), set LEAF_TESTS_SKIP_MISSING=1
to skip those tests instead, loudly (the reason is in pytest's summary). With CI=true nothing is ever skipped: the
variable is ignored and missing data or browser fail the run.

Shared runs (session fixtures, trained once per pytest run, only if a selected test needs them). Never change one in
place: copy it with `copy_run(run, tmp_path/...)` (shutil.copytree) and change the copy.
  mini_run    the run a user makes first (`make run`): leaves-mini, 96 px, warm-up + 1 epoch on the images.
              The one run whose accuracy the tests check.
  tiny_cv     `cv --n-folds 2` of TINY runs (32 px, head warm-up only, no image check, no DataLoader worker),
              written under umask 022.
  tiny_run    a run that only needs to exist: tiny_cv's fold0.
  interrupted_run  32 px, 3 image epochs, started from a/ with relative --data and --out, one DataLoader worker,
              stopped by SIGTERM to its whole process group (a batch system) in its second image epoch.

Sizes: TINY is the smallest run that exercises training (a warm-up on 32 px images); tests add only what their
behaviour needs (`--epochs 1` for image epochs, `--num-workers 1` where workers matter, the default image check where
checking is the point)."""
import atexit, json, os, resource, signal, socket, subprocess, sys, shutil, tempfile, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
import pandas as pd, pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent/'shared'/'data'
MINI, LEAVES = DATA/'leaves-mini', DATA/'classify-leaves'
CHROMIUM = Path('/usr/bin/chromium')
SKIP_VAR = 'LEAF_TESTS_SKIP_MISSING'
REAL_VAR = 'LEAF_TESTS_REAL_PROCESSES'  # =1: every `cli` run a real `leaf_fastai` process, none forked from tests/zygote.py

# under pytest-xdist (`make test`: one worker per core), each worker's `leaf_fastai` processes get their share of the
# cores: two processes of two torch threads each on two cores would oversubscribe them
if (_n := int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))) > 1:
    os.environ.setdefault('OMP_NUM_THREADS', str(max(1, (os.cpu_count() or 1) // _n)))

# options given after TINY override it (argparse: the last one wins), e.g. cli('train', ..., *TINY, '--epochs', 1)
TINY = ('--size', 32, '--epochs', 0, '--head-epochs', 3, '--tail-epochs', 0, '--no-check', '--num-workers', 0, '--quiet')

# ---------------------------------------------------------------- what the suite needs

def _ci() -> bool: return os.environ.get('CI', '').lower() not in ('', '0', 'false', 'no')

def missing(what, where, fix):
    "Fail the whole run (exit 4) because `what` is not at `where`; skip instead only with LEAF_TESTS_SKIP_MISSING=1 outside CI. Returns the skip reason"
    msg = f"{what} not found at {where}: {fix}"
    if _ci(): raise pytest.UsageError(f"{msg}. CI=true: nothing may be skipped.")
    if os.environ.get(SKIP_VAR) != '1': raise pytest.UsageError(f"{msg}. (To skip the tests that need it instead, set {SKIP_VAR}=1.)")
    return f"SKIPPED ON PURPOSE ({SKIP_VAR}=1): {msg}"

def pytest_collection_modifyitems(config, items):
    if not items: return
    if not (MINI.exists() and LEAVES.exists()):
        why = missing('the real data (leaves-mini and classify-leaves)', DATA, 'put ../shared/data beside the project')
        for it in items: it.add_marker(pytest.mark.skip(reason=why))
    if not CHROMIUM.exists() and any(it.path.name == 'test_app.py' for it in items):
        why = missing('chromium (for the browser test of the app)', CHROMIUM, "`make browser` installs Debian's chromium")
        for it in items:
            if it.path.name == 'test_app.py': it.add_marker(pytest.mark.skip(reason=why))

_runs = []  # (command, wall seconds) of every `leaf_fastai` run through `cli`, for the summary
_from_workers = dict(runs=[], cpu=0., forked=0)  # under pytest-xdist: what each worker reported as it ended

def pytest_sessionfinish(session):
    "An xdist worker hands its `leaf_fastai` runs to the controller, which prints the summary"
    if hasattr(session.config, 'workeroutput'):
        ch = resource.getrusage(resource.RUSAGE_CHILDREN)
        session.config.workeroutput['leaf_runs'] = dict(runs=[list(r) for r in _runs], cpu=ch.ru_utime+ch.ru_stime+sum(_cpu), forked=len(_cpu))

@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    "The controller collects a worker's runs (pytest-xdist's hook)"
    out = getattr(node, 'workeroutput', {}).get('leaf_runs')
    if out:
        _from_workers['runs'] += [tuple(r) for r in out['runs']]; _from_workers['cpu'] += out['cpu']; _from_workers['forked'] += out['forked']

def pytest_terminal_summary(terminalreporter):
    skipped = terminalreporter.stats.get('skipped', [])
    if skipped: terminalreporter.write_line(f"\n{len(skipped)} TESTS SKIPPED: these behaviours were NOT checked ({SKIP_VAR}={os.environ.get(SKIP_VAR)})", red=True, bold=True)
    ch = resource.getrusage(resource.RUSAGE_CHILDREN)
    runs, cpu, forked = _runs + _from_workers['runs'], _from_workers['cpu'], _from_workers['forked']
    if _runs: cpu, forked = cpu + ch.ru_utime+ch.ru_stime+sum(_cpu), forked + len(_cpu)  # without xdist: this process ran them
    if runs:
        by = {}
        for c, t in runs: by.setdefault(c, []).append(t)
        terminalreporter.write_line(f"leaf_fastai runs: {len(runs)} ({', '.join(f'{c} {len(ts)}' for c, ts in sorted(by.items(), key=lambda kv: -len(kv[1])))}), "
                                    f"{forked} of them forked from tests/zygote.py; CPU time of the runs {cpu:.0f} s")

# ---------------------------------------------------------------- running the command

def leaf_exe() -> str:
    "The installed `leaf_fastai` command: the one beside this Python, else the one on PATH"
    venv = Path(sys.executable).parent/"leaf_fastai"
    return str(venv) if venv.exists() else shutil.which("leaf_fastai")

class _Zygote:
    "The worker's `tests/zygote.py`: a process that imported the commands once and forks a fresh `leaf_fastai` per run"
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix='leafz'))
        self.sock = str(self.dir/'s')
        self.p = subprocess.Popen([sys.executable, str(Path(__file__).parent/'zygote.py'), self.sock], stdout=subprocess.PIPE, text=True)
        line = self.p.stdout.readline()  # 'ready' once its imports are done
        if line.strip() != 'ready': raise RuntimeError(f"tests/zygote.py did not start (exit {self.p.wait()})")
        atexit.register(self.close)

    def close(self):
        if self.p.poll() is None: self.p.terminate(); self.p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def run(self, args, cwd=None, timeout=600):
        "Run `leaf_fastai args` as a forked process; a CompletedProcess as `subprocess.run` gives"
        fd, out = tempfile.mkstemp(dir=self.dir); os.close(fd)
        fd, err = tempfile.mkstemp(dir=self.dir); os.close(fd)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.sock); s.settimeout(timeout)
            f = s.makefile('rwb')
            f.write(json.dumps(dict(argv=args, cwd=str(cwd or os.getcwd()), env=dict(os.environ), stdout=out, stderr=err)).encode() + b'\n'); f.flush()
            pid = json.loads(f.readline())['pid']
            try: line = f.readline()
            except (socket.timeout, TimeoutError):
                os.killpg(pid, signal.SIGKILL)
                raise subprocess.TimeoutExpired([leaf_exe(), *args], timeout)
        if not line: raise RuntimeError(f"tests/zygote.py lost the run of leaf_fastai {' '.join(args)}")
        res = json.loads(line); st = res['status']
        _cpu.append(res['cpu'])
        code = os.waitstatus_to_exitcode(st)
        outs = [Path(x).read_text(errors='replace') for x in (out, err)]
        for x in (out, err): os.unlink(x)
        return subprocess.CompletedProcess([leaf_exe(), *args], code, *outs)

_zygote, _cpu = None, []  # the worker's zygote (started at its first `cli`), CPU seconds of the runs it made

def _forked(kw) -> bool:
    "Can this run be a forked `leaf_fastai` (see tests/zygote.py for what must be a real process)?"
    return not os.environ.get(REAL_VAR) and set(kw) <= {'cwd'}

def cli(*args, check=False, timeout=600, env=None, real=False, **kw):
    """Run the `leaf_fastai` command; returns the CompletedProcess. `env`: variables to set on top of os.environ.
    A run with no `env`, `preexec_fn` or other `subprocess` keyword (but `cwd`) is forked from the worker's zygote
    (tests/zygote.py: the same command without importing torch again); `real=True`, or LEAF_TESTS_REAL_PROCESSES=1, starts
    the installed `leaf_fastai` executable instead"""
    global _zygote
    t0 = time.time()
    args = [str(a) for a in args]
    if env is None and not real and _forked(kw):
        if _zygote is None: _zygote = _Zygote()
        r = _zygote.run(args, cwd=kw.get('cwd'), timeout=timeout)
    else:
        if env is not None: env = {**os.environ, **{k: str(v) for k,v in env.items()}}
        r = subprocess.run([leaf_exe(), *args], capture_output=True, text=True, timeout=timeout, env=env, **kw)
    _runs.append((args[0], time.time() - t0))
    if check and r.returncode: raise AssertionError(f"leaf_fastai {' '.join(args)} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return r

PARALLEL = max(1, min(4, (os.cpu_count() or 1) // _n))  # each xdist worker its share of the cores

def cli_all(*calls):
    """Run independent `leaf_fastai` commands side by side, `PARALLEL` at a time; returns their CompletedProcesses in order.
    Each call is a tuple of arguments, or (arguments tuple, dict of `cli` keywords). Most of a refusal's time is its
    start-up (importing torch, fastai, timm: ~5 s of one core): two at once on 2 cores take the time of one"""
    calls = [c if len(c) == 2 and isinstance(c[0], tuple) and isinstance(c[1], dict) else (tuple(c), {}) for c in calls]
    with ThreadPoolExecutor(PARALLEL) as ex: return list(ex.map(lambda c: cli(*c[0], **c[1]), calls))

def start(*args, cwd=None, log=None, **kw):
    "Start `leaf_fastai args` in the background, stderr to the file `log` (a pipe could fill up and block it)"
    return subprocess.Popen([leaf_exe(), *map(str, args)], cwd=cwd, stdout=subprocess.DEVNULL, stderr=log, text=True, **kw)

def sigint_default():
    "preexec_fn: a shell's background job inherits SIGINT ignored; Ctrl-C at a terminal is not"
    signal.signal(signal.SIGINT, signal.SIG_DFL)

def umask022(): os.umask(0o022)

def wait_until(cond, p, timeout=600, poll=0.05):
    "Poll `cond()` until it holds (True), the process `p` ends or `timeout` s pass (False). No fixed sleeps: a condition with a deadline"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond(): return True
        if p.poll() is not None: return cond()
        time.sleep(poll)
    return False

def stop(p, sig=signal.SIGTERM, group=False, timeout=300):
    "Send `sig` to `p` (to its whole process group if `group`; it must have start_new_session=True) and wait for it; returns its exit code"
    if p.poll() is None: os.killpg(p.pid, sig) if group else p.send_signal(sig)
    try: return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL) if group else p.kill()
        p.wait(); raise

def state(run) -> dict:
    "The run's state.json ({} while there is none, or while it is being replaced)"
    try: return json.loads((Path(run)/'state.json').read_text())
    except (FileNotFoundError, json.JSONDecodeError): return {}

def phase(run): return state(run).get('phase')

def fails_with(r, *words):
    "Exit code 2, no traceback, and each of `words` in stderr"
    assert r.returncode == 2, (r.returncode, r.stdout[-500:], r.stderr[-2000:])
    assert 'Traceback' not in r.stderr, r.stderr[-2000:]
    for w in words: assert w in r.stderr, (w, r.stderr[-1000:])

def mini_copy(tmp_path, n=None):
    "A Kaggle-style folder with a copy of leaves-mini's train.csv and training images (`n` per species)"
    df = pd.read_csv(MINI/'train.csv')
    if n: df = df.groupby('label').head(n).reset_index(drop=True)
    d = tmp_path/'data'; (d/'images').mkdir(parents=True, exist_ok=True)
    for f in df.image: shutil.copy(MINI/f, d/f)
    df.to_csv(d/'train.csv', index=False)
    return d, df

def copy_run(src, dst):
    "A copy of the run folder `src` at `dst`, to change without touching a shared run"
    shutil.copytree(src, dst, symlinks=True)
    return dst

# ---------------------------------------------------------------- shared runs

@pytest.fixture(scope='session')
def mini_run(tmp_path_factory):
    "The first run a user makes (`make run`): leaves-mini at 96 px, warm-up + 1 epoch on the images. Copy it before changing anything"
    out = tmp_path_factory.mktemp('runs')/'mini'
    r = cli('train', '--data', MINI, '--size', 96, '--epochs', 1, '--out', out, '--quiet', check=True, real=True)  # the installed executable, as a user runs it
    return out, r

@pytest.fixture(scope='session')
def tiny_cv(tmp_path_factory):
    "`cv --n-folds 2` of TINY runs on leaves-mini (seed 1), written under umask 022: two runs for one start-up. Copy it before changing anything"
    out = tmp_path_factory.mktemp('tinycv')/'cv1'
    cli('cv', '--data', MINI, '--n-folds', 2, *TINY, '--seed', 1, '--out', out, check=True, preexec_fn=umask022)
    return out

@pytest.fixture(scope='session')
def tiny_run(tiny_cv):
    "A finished run that only needs to exist (TINY: 32 px, warm-up only; validation: half the images): tiny_cv's first fold. Copy it before changing anything"
    return tiny_cv/'fold0'

@pytest.fixture(scope='session')
def interrupted_run(tmp_path_factory):
    """`train --out runs/r` (relative --data and --out) started in a/ with one DataLoader worker, stopped by SIGTERM to its
    whole process group (as a batch system's `kill -- -PGID`) in its second image epoch. Copy `.dir` before changing anything"""
    base = tmp_path_factory.mktemp('interrupted'); a = base/'a'; a.mkdir()
    out, errf = a/'runs'/'r', base/'stderr.txt'
    with open(errf, 'w') as log:
        p = start('train', '--data', os.path.relpath(MINI, a), '--size', 32, '--epochs', 3, '--head-epochs', 3, '--tail-epochs', 0,
                  '--no-check', '--num-workers', 1, '--out', 'runs/r', '--quiet', cwd=a, log=log, start_new_session=True)
        reached = wait_until(lambda: phase(out) == 'fine_tune', p)  # the first image epoch is done: the second is running
        rc = stop(p, signal.SIGTERM, group=True)
    err = errf.read_text()
    assert reached, f"the run never finished its first image epoch (exit {rc}):\n{err[-2000:]}"
    return SimpleNamespace(dir=out, rc=rc, err=err, state=state(out))
