"""Edit one notebook cell from the shell, so that notebooks (the source) are changed without hand-editing JSON.

    python tools/nbcell.py list   NB                   # cells: id, type, first line
    python tools/nbcell.py get    NB ID                # a cell's source on stdout
    python tools/nbcell.py set    NB ID FILE           # replace a cell's source (its outputs are cleared)
    python tools/nbcell.py insert NB AFTER FILE [md]   # a new code (or markdown) cell after cell AFTER ('top' for the first); prints its id
    python tools/nbcell.py delete NB ID

FILE may be - for standard input. Each write rereads the notebook first, so cells of one notebook can be edited one after another."""
import sys, json, uuid
from pathlib import Path

def _read(nb): return json.loads(Path(nb).read_text())
def _write(nb, d): Path(nb).write_text(json.dumps(d, indent=1, ensure_ascii=False)+'\n')
def _src(f): return sys.stdin.read() if f=='-' else Path(f).read_text()
def _lines(s): return s.splitlines(keepends=True)

def _find(d, cid):
    for i,c in enumerate(d['cells']):
        if c.get('id')==cid: return i
    sys.exit(f"no cell {cid!r}")

def main(cmd, nb, *args):
    d = _read(nb)
    if cmd=='list':
        for c in d['cells']: print(c.get('id'), c['cell_type'][:4], ''.join(c['source']).split('\n')[0][:100])
    elif cmd=='get': sys.stdout.write(''.join(d['cells'][_find(d, args[0])]['source'])+'\n')
    elif cmd=='set':
        c = d['cells'][_find(d, args[0])]
        c['source'] = _lines(_src(args[1]).rstrip('\n'))
        if c['cell_type']=='code': c['outputs'],c['execution_count'] = [],None
        _write(nb, d)
    elif cmd=='insert':
        md = len(args)>2 and args[2]=='md'
        c = dict(cell_type='markdown' if md else 'code', id=uuid.uuid4().hex[:8], metadata={}, source=_lines(_src(args[1]).rstrip('\n')))
        if not md: c.update(execution_count=None, outputs=[])
        i = 0 if args[0]=='top' else _find(d, args[0])+1
        d['cells'].insert(i, c); _write(nb, d); print(c['id'])
    elif cmd=='delete': del d['cells'][_find(d, args[0])]; _write(nb, d)
    else: sys.exit(__doc__)

if __name__=='__main__': main(*sys.argv[1:]) if len(sys.argv)>2 else sys.exit(__doc__)
