"""Trust III (#29) end to end through the CLI: an image's answer does not depend on its company, refusals that name
what is wrong (not a traceback), a multi-page TIFF said to be read from its first page, no progress-bar fragments in
a log. Each test failed on the code before #29 (the old random TTA views, the tracebacks and messages it names)."""
import shutil
import numpy as np, pandas as pd, pytest
from PIL import Image
from conftest import cli, cli_all, fails_with, MINI

def _submit(run, d, names, out, tta=None):
    "`predict` over the images `names` of folder `d` (as its test.csv), with the default TTA unless `tta`; their probability rows"
    pd.DataFrame(dict(image=names)).to_csv(d/'test.csv', index=False)
    cli('predict', '--run', run, '--data', d, '--out', out, *(('--tta', tta) if tta is not None else ()), check=True)
    return pd.read_csv(out.with_name(out.stem + '_probs.csv'), index_col='image')

def test_same_image_same_answer_in_any_company(mini_run, tmp_path):
    "With predict's default TTA: the 60 test images, their rows reversed, and one image alone get the same probabilities (1e-5)"
    run, _ = mini_run
    names = pd.read_csv(MINI/'test.csv').image.tolist()
    d = tmp_path/'d'; (d/'images').mkdir(parents=True)
    for f in names: shutil.copy(MINI/f, d/f)
    a = _submit(run, d, names, tmp_path/'a.csv')
    b = _submit(run, d, names[::-1], tmp_path/'b.csv').loc[a.index]
    one = _submit(run, d, names[7:8], tmp_path/'one.csv')
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-5)
    np.testing.assert_allclose(one.to_numpy()[0], a.loc[names[7]].to_numpy(), atol=1e-5)
    assert (a.to_numpy() - _submit(run, d, names, tmp_path/'p.csv', tta=0).loc[a.index].to_numpy()).__abs__().max() > 1e-3  # TTA was on

def test_messages_that_used_to_mislead(tiny_run, tmp_path):
    "`predict --out /` and `--out .`, `--tta 8`, `app --port 99999`: exit 2 with the option and what to use, no traceback"
    r1, r2, r3, r4 = cli_all(('predict', '--run', tiny_run, '--data', MINI, '--out', '/'),
                             ('predict', '--run', tiny_run, '--data', MINI, '--out', '.'),
                             ('predict', '--run', tiny_run, '--data', MINI, '--tta', 8, '--out', tmp_path/'s.csv'),
                             ('app', '--run', tiny_run, '--port', 99999))
    fails_with(r1, '--out / is a folder'); fails_with(r2, 'is a folder')
    fails_with(r3, '--tta 8: use 0', 'to 7')
    fails_with(r4, '--port 99999 is not a port: use a number from 1 to 65535')
    assert not (tmp_path/'s.csv').exists()

def test_multipage_tiff_says_which_page(mini_run, tmp_path):
    "A 3-page TIFF is classified from its first page, and `predict` says so beside its top species"
    leaf = Image.open(MINI/pd.read_csv(MINI/'test.csv').image[0]).convert('RGB')
    f = tmp_path/'pages.tif'
    leaf.save(f, save_all=True, append_images=[leaf.rotate(90), leaf.rotate(180)])
    r = cli('predict', '--run', mini_run[0], f, check=True)
    assert '(page 1 of 3 classified)' in r.stdout, r.stdout

def test_report_piped_has_no_bar_fragments(mini_run, tmp_path):
    "`report` with its output piped to a file (as here): no carriage returns or progress bars in what it writes"
    r = cli('report', '--run', mini_run[0], '--data', MINI, '--out', tmp_path/'rep', check=True)
    assert '\r' not in r.stdout + r.stderr and '█' not in r.stdout + r.stderr, (r.stdout[-500:], r.stderr[-500:])
