"Write README.md from nbs/index.ipynb (what `nbdev-readme` does, without Quarto, which cannot be installed offline)"
import json, re
from pathlib import Path
root = Path(__file__).resolve().parents[1]
nb = json.loads((root/'nbs'/'index.ipynb').read_text())
out = ['<!-- WARNING: generated from nbs/index.ipynb by tools/readme.py; edit the notebook -->', '']
for c in nb['cells']:
    src = ''.join(c['source'])
    if c['cell_type'] == 'markdown': out += [re.sub(r'\]\((images/[^)]+)\)', r'](nbs/\1)', src), '']  # pictures live in nbs/images
    elif not re.search(r'^#\|\s*hide', src, re.M):
        code = '\n'.join(l for l in src.splitlines() if not l.startswith('#|')).strip()
        if code: out += ['```python', code, '```', '']
(root/'README.md').write_text('\n'.join(out).rstrip() + '\n')
