"ONNX export through the CLI on leaves-mini: `export` + `predict --engine onnx` give the PyTorch path's submission; a missing, damaged or stale model.onnx is a clear error"
import shutil
import pandas as pd, pytest
from conftest import cli, MINI, fails_with, copy_run

@pytest.fixture(scope='module')
def exported(mini_run, tmp_path_factory):
    "A copy of the shared leaves-mini run (96 px), exported"
    out = copy_run(mini_run[0], tmp_path_factory.mktemp('onnx')/'run')
    return out, cli('export', '--run', out, check=True)

def predict(out, dest, *extra, **kw): return cli('predict', '--run', out, '--data', MINI, '--out', dest, *extra, **kw)

def test_export_checks_the_graph(exported):
    out, r = exported
    assert (out/'model.onnx').stat().st_size > 1e6  # the weights are inside (one file, no .data beside it)
    assert not list(out.glob('*.data')) and not (out/'.lock').exists()
    diff = float(r.stdout.split('PyTorch to ')[1].split()[0])
    assert diff <= 1e-4, r.stdout  # measured 3e-6 on the 30 validation images
    assert f"wrote {out/'model.onnx'}: onnxruntime = PyTorch to" in r.stdout and '(largest probability difference, 30 validation images)' in r.stdout, r.stdout

def test_onnx_submission_equals_pytorch(exported, tmp_path):
    out, _ = exported
    runs = {e: predict(out, tmp_path/f'{e}.csv', '--engine', e, check=True) for e in ('torch', 'onnx', 'auto')}
    assert 'engine: onnx' in runs['auto'].stdout  # auto picks the exported graph
    subs = {e: pd.read_csv(tmp_path/f'{e}.csv') for e in runs}
    assert subs['onnx'].equals(subs['torch']) and subs['auto'].equals(subs['torch'])
    pt, po = (pd.read_csv(tmp_path/f'{e}_probs.csv', index_col=0) for e in ('torch', 'onnx'))
    assert abs(pt.values - po.values).max() < 1e-4  # with TTA (2 views): the same views on both engines

def test_ensemble_engines_agree(exported, tmp_path):
    out, _ = exported
    twin = tmp_path/'twin'; shutil.copytree(out, twin)
    for e in ('torch', 'onnx'): cli('ensemble', out, twin, '--data', MINI, '--out', tmp_path/f'{e}.csv', '--engine', e, check=True)
    assert pd.read_csv(tmp_path/'onnx.csv').equals(pd.read_csv(tmp_path/'torch.csv'))

def test_damaged_missing_or_stale_model_onnx(exported, tmp_path):
    out, _ = exported
    bad, sub = tmp_path/'bad', tmp_path/'sub.csv'
    shutil.copytree(out, bad)
    (bad/'model.onnx').write_bytes((out/'model.onnx').read_bytes()[:5000])
    for engine in ('onnx', 'auto'):  # auto never falls back silently
        fails_with(predict(bad, sub, '--engine', engine), 'model.onnx is damaged or not an ONNX model', f'leaf_fastai export --run {bad}')
    (bad/'model.onnx').unlink()
    fails_with(predict(bad, sub, '--engine', 'onnx'), 'model.onnx is missing', f'leaf_fastai export --run {bad}')
    r = predict(bad, sub, '--engine', 'auto', '--tta', 0, check=True)
    assert f'wrote {sub} (60 rows; engine: torch)' in r.stdout, r.stdout  # no graph: PyTorch
    sub.unlink(); sub.with_name('sub_probs.csv').unlink()
    shutil.copy(out/'model.onnx', bad/'model.onnx')  # a graph of other weights: one weight of the run changed since
    w = bytearray((bad/'model.safetensors').read_bytes()); w[-100] ^= 1; (bad/'model.safetensors').write_bytes(bytes(w))
    fails_with(predict(bad, sub), "was not exported from this run's model.safetensors", 'leaf_fastai export --run')
    assert not sub.exists()  # nothing half-written

def test_export_bad_input(exported, tmp_path):
    out, _ = exported
    fails_with(cli('export', '--run', MINI), 'is not a finished run folder')
    fails_with(cli('export', '--run', out, '--format', 'tflite'), "--format 'tflite'", 'onnx')
    fails_with(predict(out, tmp_path/'s.csv', '--engine', 'tensorrt'), "--engine 'tensorrt'", 'auto, torch or onnx')
