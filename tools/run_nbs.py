"""Execute notebooks in place so they are committed with their outputs (the documentation): `python tools/run_nbs.py [nbs/NAME.ipynb ...]`.
`--outputs-only`: clean the outputs already there (paths, process ids, progress-bar fragments) without executing"""
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
_bar = re.compile(r'\|[█\-]*\| *\d+\.\d+% \[')  # a fastprogress bar: |████----| 45.00% [9/20 00:01<00:02]

def _unbar(s):
    "Text as a terminal shows it in the end: of each line the part after its last carriage return, bars and lone bar glyphs dropped"
    out = []
    for line in s.split('\n'):
        seg = line.split('\r')[-1]
        if _bar.search(seg) or (seg.strip() in ('', '█') and ('\r' in line or '█' in line)): continue
        out.append(seg)
    return '\n'.join(out)

def _clean(s):
    for pat,rep in _subs: s = pat.sub(rep, s)
    return _unbar(s)

def _clean_outputs(nb):
    for c in nb.cells:
        for o in c.get('outputs', []):
            if 'text' in o: o['text'] = _clean(''.join(o['text']) if isinstance(o['text'], list) else o['text'])
            for k,v in o.get('data', {}).items():
                if k.startswith('text/'): o['data'][k] = _clean(''.join(v) if isinstance(v, list) else v)

args = [a for a in sys.argv[1:] if a!='--outputs-only']
for fn in [Path(f).resolve() for f in args] or sorted((root/'nbs').glob('*.ipynb')):
    nb = read_nb(fn)
    if '--outputs-only' in sys.argv:
        _clean_outputs(nb); write_nb(nb, fn); print(f"cleaned {fn.name}"); continue
    os.chdir(fn.parent.resolve())
    sh = CaptureShell()
    sh.run_all(nb, exc_stop=True, preproc=_skip)
    _clean_outputs(nb)
    write_nb(nb, fn)
    print(f"executed {fn.name}: {fn.stat().st_size/1e3:.0f} kB")
