"""ONNX: `predict --engine onnx` (onnxruntime) against the PyTorch path, side by side in one run, on the same real images.

- export: `leaf_fastai export` on the run (if it has no model.onnx yet), with the largest probability difference on its validation images;
- predict pipeline: `predict_probs` (decode + resize + TTA views + model) over the first N images of classify-leaves' test.csv,
  both engines alternating, `--repeats` times each; images/s of the best repeat;
- model alone: one batch of 64 preprocessed images, PyTorch's folded channels-last model (what `predict` runs) against the onnxruntime session;
- `--full`: `predict` on the whole test.csv with each engine: wall time and whether the submissions are identical.

    python bench/onnx_speed.py --run RUN [--n 640] [--tta 2] [--repeats 3] [--full]
"""
import argparse, contextlib, io, json, sys, time, platform, tempfile
from pathlib import Path
import numpy as np, pandas as pd, torch
from fastai.vision.all import set_seed
from leaf_fastai.data import test_items
from leaf_fastai.models import fold_bn
from leaf_fastai.rundir import RunDir
from leaf_fastai.predict import load_run, predict_probs, predict
from leaf_fastai.export import export

HERE = Path(__file__).parent
DATA = HERE.parent.parent/'shared'/'data'/'classify-leaves'

def model_alone(run, bs=64, repeats=5):
    "images/s of the model alone on one batch: PyTorch (folded, channels-last, as predict) vs onnxruntime"
    pt, ox = load_run(run), load_run(run, engine='onnx')
    items = test_items(DATA)[:bs]
    x01 = ox.dls.test_dl(items, bs=bs).one_batch()[0].as_subclass(torch.Tensor)  # 0-1 RGB
    xn = pt.dls.test_dl(items, bs=bs).one_batch()[0].as_subclass(torch.Tensor)   # normalised
    body = fold_bn(pt.model[0], xn[:2]).to(memory_format=torch.channels_last)
    model = torch.nn.Sequential(body, pt.model[1]).eval()
    xn = xn.contiguous(memory_format=torch.channels_last)
    def t_torch():
        with torch.inference_mode(): model(xn)
    def t_onnx(): ox.model(x01)
    res = {}
    for name, f in (('torch', t_torch), ('onnx', t_onnx)): f()  # warm-up
    for name, f in (('torch', t_torch), ('onnx', t_onnx)) * repeats:
        t0 = time.perf_counter(); f(); dt = time.perf_counter()-t0
        res[name] = max(res.get(name, 0), bs/dt)
    return res

def pipeline(run, items, tta, repeats):
    "images/s of `predict_probs` with each engine (best of `repeats`, engines alternating), and the largest probability difference"
    learns = {e: load_run(run, engine=e) for e in ('torch', 'onnx')}
    speed, probs = {}, {}
    for e in ('torch', 'onnx'): predict_probs(learns[e], items[:64])  # warm-up
    for _ in range(repeats):
        for e in ('torch', 'onnx'):
            t0 = time.perf_counter(); probs[e] = predict_probs(learns[e], items, tta); dt = time.perf_counter()-t0
            speed[e] = max(speed.get(e, 0), len(items)/dt)
    return speed, float(abs(probs['torch'].values-probs['onnx'].values).max()), bool((probs['torch'].idxmax(1)==probs['onnx'].idxmax(1)).all())

def full(run, tta):
    "`predict` on the whole test.csv with each engine"
    out, res = Path(tempfile.mkdtemp()), {}
    for e in ('torch', 'onnx'):
        t0 = time.perf_counter(); predict(run=run, data=DATA, tta=tta, out=out/f'{e}.csv', engine=e); res[f'{e}_s'] = round(time.perf_counter()-t0, 1)
    subs = [pd.read_csv(out/f'{e}.csv') for e in ('torch', 'onnx')]
    probs = [pd.read_csv(out/f'{e}_probs.csv', index_col=0) for e in ('torch', 'onnx')]
    res.update(n_images=len(subs[0]), identical_submissions=bool(subs[0].equals(subs[1])), labels_equal=float((subs[0].label==subs[1].label).mean()),
               max_prob_diff=float(abs(probs[0].values-probs[1].values).max()), speedup=round(res['torch_s']/res['onnx_s'], 2))
    return res

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--run', required=True); p.add_argument('--n', type=int, default=640); p.add_argument('--tta', type=int, default=2)
    p.add_argument('--repeats', type=int, default=3); p.add_argument('--full', action='store_true'); p.add_argument('--out', default='onnx_speed.json')
    a = p.parse_args()
    set_seed(42)
    rd = RunDir(a.run); meta = rd.read_meta()
    res = dict(command='python bench/onnx_speed.py ' + ' '.join(sys.argv[1:]), date=time.strftime('%Y-%m-%d %H:%M'), machine=platform.processor() or platform.machine(),
               cpus=torch.get_num_threads(), torch=torch.__version__, arch=meta['arch'], size=meta['size'], classes=len(meta['classes']))
    import onnxruntime; res['onnxruntime'] = onnxruntime.__version__
    if not rd.exists('model.onnx'):
        buf = io.StringIO(); t0 = time.perf_counter()
        with contextlib.redirect_stdout(buf): export(a.run)
        res['export'] = dict(seconds=round(time.perf_counter()-t0, 1), message=buf.getvalue().strip().splitlines()[-1],
                             max_prob_diff_valid=float(buf.getvalue().split('PyTorch to ')[1].split()[0]))
        print(res['export'])
    items = test_items(DATA)[:a.n]
    speed, diff, same = pipeline(a.run, items, a.tta, a.repeats)
    res['pipeline'] = dict(n_images=len(items), tta=a.tta, torch_img_s=round(speed['torch'], 1), onnx_img_s=round(speed['onnx'], 1),
                           speedup=round(speed['onnx']/speed['torch'], 2), max_prob_diff=diff, same_labels=same)
    print('pipeline', res['pipeline'])
    m = model_alone(a.run)
    res['model_alone'] = dict(bs=64, torch_img_s=round(m['torch'], 1), onnx_img_s=round(m['onnx'], 1), speedup=round(m['onnx']/m['torch'], 2))
    print('model alone', res['model_alone'])
    if a.full: res['full_test_csv'] = full(a.run, a.tta); print('full', res['full_test_csv'])
    (HERE/'results'/a.out).write_text(json.dumps(res, indent=1) + '\n')
    print(f"wrote {HERE/'results'/a.out}")
