"""Several tails from one pass (`train --tails N --views K`): the run's model is their mean, in `predict` and in the ONNX
graph `export` writes, and a run stopped in any phase (after the warm-up, in the first tail, in the second) resumes
to the same schedule without training a finished tail again."""
import hashlib, json, signal
import numpy as np, pandas as pd, pytest, torch
from conftest import cli, start, stop, wait_until, state, phase, MINI, TINY

# 48 px (at 32 px, 2x2 maps, the tails diverge), two views, two tails of 4 epochs of 33 batches: long enough to be stopped inside each tail
TAILS = (*TINY, '--size', 48, '--tails', 2, '--views', 2, '--tail-epochs', 4, '--tail-bs', 8)

def _sha(f): return hashlib.sha256(f.read_bytes()).hexdigest()

@pytest.fixture(scope='module')
def tails_run(tmp_path_factory):
    """A two-tail run stopped by SIGTERM after its warm-up, in its first tail and in its second, each time resumed
    with `--resume`; with what was seen at each stop"""
    base = tmp_path_factory.mktemp('tails'); out = base/'r'
    stops = []
    for i,when in enumerate(('warmup', 'tail1', 'tail2')):
        with open(base/f'err{i}.txt', 'w') as log:
            args = ('train', '--data', MINI, *TAILS, '--out', out) if i == 0 else ('train', '--resume', out, '--quiet')
            p = start(*args, log=log)
            reached = wait_until(lambda: phase(out) == when, p, 600, poll=0.02)
            rc = stop(p, signal.SIGTERM)
        err = (base/f'err{i}.txt').read_text()
        assert reached and rc == 2 and 'continue with: leaf_fastai train --resume' in err, (when, rc, err[-2000:])
        st = state(out)
        stops.append(dict(phase=st['phase'], epochs_done=st.get('epochs_done'), tail1=_sha(out/'checkpoints'/'tail1.pth') if (out/'checkpoints'/'tail1.pth').exists() else None))
    r = cli('train', '--resume', out, '--quiet', check=True)
    return out, stops, r

def test_resumes_in_each_phase(tails_run):
    "Stopped after the warm-up, in tail 1 and in tail 2: each resume goes on where the last stopped; tail 1, once finished, is not trained again"
    out, stops, r = tails_run
    assert [s['phase'] for s in stops] == ['warmup', 'tail1', 'tail2'], stops
    assert stops[1]['tail1'] is None and stops[2]['tail1'] is not None, stops
    assert _sha(out/'checkpoints'/'tail1.pth') == stops[2]['tail1']  # the last resume left the finished tail as it was
    h = pd.read_csv(out/'history.csv')
    assert h[h.phase == 'tail1'].epoch.tolist() == list(range(4)) and h[h.phase == 'tail2'].epoch.tolist() == list(range(4)), h.tail(10)
    sched, meta = json.loads((out/'schedule.json').read_text()), json.loads((out/'model.json').read_text())
    assert (sched['views'], sched['tails'], meta['tails'], meta['cut']) == (2, 2, 2, 6)
    assert json.loads((out/'metrics.json').read_text())['valid_acc'] > 0.5  # 48 px, 10 species: chance is 0.1 (measured 0.77 uninterrupted)

def _tail_probs(run, items):
    "Softmax probabilities of each tail checkpoint, as a model of its own"
    from fastai.vision.learner import create_timm_model
    from leaf_fastai.predict import load_run
    learn = load_run(run)
    meta, out = learn.meta, []
    for i in (1, 2):
        m,_ = create_timm_model(meta['arch'], len(meta['classes']), pretrained=False, lin_ftrs=meta['lin_ftrs'] or None, ps=meta['ps'])
        m.load_state_dict(torch.load(run/'checkpoints'/f'tail{i}.pth', weights_only=True))
        with torch.no_grad(): out.append(torch.cat([m.eval()(x).softmax(1) for (x,) in learn.dls.test_dl(items, bs=64)]))
    return torch.stack(out).numpy()

def test_prediction_is_the_mean_of_the_tails(tails_run, tmp_path):
    "`predict`'s probabilities are the mean of the two tails' own (each loaded from its checkpoint as a model of its own), to 1e-5"
    out = tails_run[0]
    cli('predict', '--run', out, '--data', MINI, '--tta', 0, '--out', tmp_path/'sub.csv', check=True)
    probs = pd.read_csv(tmp_path/'sub_probs.csv', index_col='image')
    each = _tail_probs(out, [MINI/f for f in probs.index])
    np.testing.assert_allclose(probs.to_numpy(), each.mean(0), atol=1e-5)
    assert np.abs(each[0] - each[1]).max() > 1e-2  # two different tails, not one twice

def test_onnx_export_of_the_tails(tails_run, tmp_path):
    "`export` writes one graph with the shared trunk and both tails (checked against PyTorch by export itself); `predict` with it gives PyTorch's probabilities to 1e-4"
    from conftest import copy_run
    run = copy_run(tails_run[0], tmp_path/'run')
    cli('export', '--run', run, check=True)
    for engine in ('onnx', 'torch'):
        cli('predict', '--run', run, '--data', MINI, '--tta', 2, '--engine', engine, '--out', tmp_path/f'{engine}.csv', check=True)
    a, b = (pd.read_csv(tmp_path/f'{e}_probs.csv', index_col='image') for e in ('onnx', 'torch'))
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-4)
