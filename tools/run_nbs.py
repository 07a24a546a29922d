"Execute notebooks in place so they are committed with their outputs (the documentation): `python tools/run_nbs.py [nbs/NAME.ipynb ...]`"
import sys, os
from pathlib import Path
from fastcore.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

root = Path(__file__).resolve().parents[1]
def _skip(cell): return cell.cell_type=='code' and ('#| eval: false' in cell.source or 'nbdev_export()' in cell.source)

for fn in [Path(f).resolve() for f in sys.argv[1:]] or sorted((root/'nbs').glob('*.ipynb')):
    nb = read_nb(fn)
    os.chdir(fn.parent.resolve())
    sh = CaptureShell()
    sh.run_all(nb, exc_stop=True, preproc=_skip)
    write_nb(nb, fn)
    print(f"executed {fn.name}: {fn.stat().st_size/1e3:.0f} kB")
