"""A `leaf_fastai` that has imported torch, fastai, timm and the commands once, and forks a fresh process per command.

Most of a test's `leaf_fastai` run is its start-up: ~5 s of one core importing torch, fastai and timm, paid again by
each of the suite's ~100 runs. conftest's `cli` sends its runs here instead (`python tests/zygote.py SOCKET`): for each
request a runner process is forked, which forks the command's process and waits for it; that process starts a session
of its own, takes the test's working folder, environment and output files, runs `leaf_fastai.cli.main` with the
arguments, and ends as the `leaf_fastai` command ends (`sys.exit`, so its exit handlers run). The runner reports the
exact exit status. Everything after the imports is the real command: parsing, checks, training, files, exit codes.

What stays with real `leaf_fastai` processes (conftest decides): runs with their own environment variables (read at
import time by some libraries), runs with a `preexec_fn`, background runs that tests stop with signals, and any run
when LEAF_TESTS_REAL_PROCESSES=1.

Protocol, one connection per run: the test sends one JSON line {argv, cwd, env, stdout, stderr}; the runner answers
{"pid": P} once the command's process exists, then {"status": S, "cpu": seconds} when it has ended (S as os.waitpid's)."""
import json, os, resource, signal, socket, sys, threading, warnings

warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')  # the CLI filters it too, before its imports
import leaf_fastai.cli, leaf_fastai.train, leaf_fastai.cv, leaf_fastai.predict, leaf_fastai.ensemble  # noqa: E401
import leaf_fastai.report, leaf_fastai.export, leaf_fastai.data  # noqa: E401

def command(req) -> int:
    "In the command's process: become the `leaf_fastai` process the test asked for, run it, return its exit code"
    os.setsid()  # its own process group: a timed-out run is killed with its DataLoader workers
    for s in (signal.SIGCHLD, signal.SIGPIPE, signal.SIGTERM): signal.signal(s, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.chdir(req['cwd'])
    os.environ.clear(); os.environ.update(req['env'])
    fd = os.open(os.devnull, os.O_RDONLY); os.dup2(fd, 0); os.close(fd)
    for n, f in ((1, req['stdout']), (2, req['stderr'])):
        fd = os.open(f, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600); os.dup2(fd, n); os.close(fd)
    sys.argv = ['leaf_fastai', *req['argv']]
    try: return leaf_fastai.cli.main()
    except SystemExit as e: return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)

def runner(conn) -> int:
    "In the runner: fork the command's process, report its pid, wait for it, report how it ended"
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the zygote ignores it (its runners are reaped by the kernel); a waiter must not
    f = conn.makefile('rwb')
    req = json.loads(f.readline())
    pid = os.fork()
    if pid == 0:
        f.close(); conn.close()
        return ('exit', command(req))
    f.write(json.dumps(dict(pid=pid)).encode() + b'\n'); f.flush()
    _, status = os.waitpid(pid, 0)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    try: f.write(json.dumps(dict(status=status, cpu=ru.ru_utime + ru.ru_stime)).encode() + b'\n'); f.flush()
    except OSError: pass  # the test gave up on it (timeout)
    return ('quit', 0)

def serve(path):
    assert threading.active_count() == 1, f"threads started by the imports: {threading.enumerate()}; forking would copy a locked state"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); srv.bind(path); srv.listen(64)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    print('ready', flush=True)
    while True:
        conn, _ = srv.accept()
        sys.stdout.flush(); sys.stderr.flush()
        if os.fork(): conn.close(); continue
        srv.close()
        return runner(conn)

if __name__ == '__main__':
    how, code = serve(sys.argv[1])
    if how == 'quit': os._exit(0)  # a runner: nothing of its own to clean up
    sys.stdout.flush(); sys.stderr.flush()
    sys.exit(code)  # the command's process ends as `leaf_fastai` does: exit handlers, then the code
