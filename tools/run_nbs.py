"Execute notebooks in place so they are committed with their outputs (the documentation): `python tools/run_nbs.py [nbs/NAME.ipynb ...]`"
import sys, os, re, warnings
from pathlib import Path
from fastcore.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

root = Path(__file__).resolve().parents[1]
warnings.filterwarnings('ignore', message='.*torch.jit.script.*')  # timm's import, with this machine's venv path in it
# outputs are documentation: no temporary folders, no paths of the machine that ran them
_subs = [(re.compile(r'/tmp/leaf_fastai-nb-\w+/'), ''),  # the notebook's own temporary folder (its first cells make it)
         (re.compile(r'/tmp/(pytest-of-\w+/pytest-\d+/\w+|tmp\w+)'), 'tmp'), (re.compile(r'(?<!\w)tmp[a-z0-9_]{8}(?!\w)'), 'tmp'),
         (re.compile(re.escape(str(root))), '.'), (re.compile(r'process \d+'), 'process N')]  # and no process ids

def _skip(cell): return cell.cell_type=='code' and ('#| eval: false' in cell.source or 'nbdev_export()' in cell.source)
def _clean(s):
    for pat,rep in _subs: s = pat.sub(rep, s)
    return s

def _clean_outputs(nb):
    for c in nb.cells:
        for o in c.get('outputs', []):
            if 'text' in o: o['text'] = _clean(''.join(o['text']) if isinstance(o['text'], list) else o['text'])
            for k,v in o.get('data', {}).items():
                if k.startswith('text/'): o['data'][k] = _clean(''.join(v) if isinstance(v, list) else v)

for fn in [Path(f).resolve() for f in sys.argv[1:]] or sorted((root/'nbs').glob('*.ipynb')):
    nb = read_nb(fn)
    os.chdir(fn.parent.resolve())
    sh = CaptureShell()
    sh.run_all(nb, exc_stop=True, preproc=_skip)
    _clean_outputs(nb)
    write_nb(nb, fn)
    print(f"executed {fn.name}: {fn.stat().st_size/1e3:.0f} kB")
