"""Images read as a person sees them (Trust II, #21), end to end through the CLI: EXIF orientation, 16-bit, grayscale,
palette, RGBA and CMYK images, and photos far larger than the training size"""
import numpy as np, pandas as pd
from PIL import Image
from conftest import cli, mini_copy, MINI

def _probs(run, d, names, tmp_path):
    "`predict` (no TTA) over `names` in folder `d`: their probability rows, indexed by name"
    pd.DataFrame(dict(image=names)).to_csv(d/'test.csv', index=False)
    cli('predict', '--run', run, '--data', d, '--tta', 0, '--engine', 'torch', '--out', tmp_path/'sub.csv', check=True)
    return pd.read_csv(tmp_path/'sub_probs.csv', index_col='image')

def test_predict_reads_images_as_a_person_sees_them(mini_run, tmp_path):
    "A photo stored sideways with an EXIF orientation tag is predicted as the upright photo; a 16-bit PNG as its 8-bit twin, not as white"
    run, _ = mini_run
    d = tmp_path/'photos'; d.mkdir()
    leaf = Image.open(MINI/pd.read_csv(MINI/'test.csv').image[0]).convert('RGB')
    leaf.save(d/'upright.png')
    ex = Image.Exif(); ex[0x0112] = 6  # a phone's "rotate 90° clockwise to view"
    side = leaf.rotate(90, expand=True)
    side.save(d/'tagged.png', exif=ex); side.save(d/'sideways.png')  # lossless, so the upright pixels come back exactly
    gray = leaf.convert('L'); gray.convert('RGB').save(d/'gray8.png')
    Image.fromarray(np.asarray(gray, dtype=np.uint16)*257).save(d/'gray16.png')
    assert Image.open(d/'gray16.png').mode == 'I;16'
    Image.new('RGB', leaf.size, 'white').save(d/'white.png')
    p = _probs(run, d, ['upright.png', 'tagged.png', 'sideways.png', 'gray8.png', 'gray16.png', 'white.png'], tmp_path)
    diff = lambda a, b: float((p.loc[a] - p.loc[b]).abs().max())
    assert diff('tagged.png', 'upright.png') < 1e-5, p
    assert diff('sideways.png', 'upright.png') > 1e-3, p  # the tag matters for this model: the test above can fail
    assert diff('gray16.png', 'gray8.png') < 1e-5, p
    assert diff('gray16.png', 'white.png') > 1e-3, p

def test_stats_counts_upright_sizes(tmp_path):
    "`stats` reports the size a viewer shows for a photo stored sideways with an orientation tag"
    d = tmp_path/'data'; (d/'images').mkdir(parents=True)
    leaf = Image.open(MINI/pd.read_csv(MINI/'train.csv').image[0]).convert('RGB').crop((0, 0, 224, 160))
    ex = Image.Exif(); ex[0x0112] = 6
    rows = []
    for i in range(4):
        for sp in ('a', 'b'):
            f = f'images/{sp}{i}.jpg'; leaf.rotate(90, expand=True).save(d/f, exif=ex); rows.append((f, sp))
    pd.DataFrame(rows, columns=['image', 'label']).to_csv(d/'train.csv', index=False)
    r = cli('stats', '--data', d, '--out', tmp_path/'counts.png', check=True)
    assert '224x160' in r.stdout and '160x224' not in r.stdout, r.stdout

def test_odd_images_work(tmp_path):
    "RGBA/grayscale/palette PNGs, a CMYK JPEG and a 6000x4000 image pass the image check and train, warm-up and an image epoch"
    d, df = mini_copy(tmp_path, n=6)
    conv = {0: ('RGBA', 'png'), 1: ('L', 'png'), 2: ('P', 'png'), 3: ('CMYK', 'jpg'), 4: ('L', 'jpg')}
    for i, (mode, ext) in conv.items():
        f = d/f'odd{i}.{ext}'
        Image.open(d/df.image.iloc[i]).convert(mode).save(f)
        df.loc[df.index[i], 'image'] = str(f)
    big = d/'big.jpg'
    Image.open(d/df.image.iloc[5]).resize((6000, 4000)).save(big, quality=80)
    df.loc[df.index[5], 'image'] = str(big)
    df.to_csv(d/'train.csv', index=False)
    r = cli('train', '--data', d, '--size', 32, '--head-epochs', 3, '--tail-epochs', 0, '--epochs', 1, '--valid-pct', 0.3,
            '--out', tmp_path/'run', '--quiet', check=True)
    assert r.stdout.strip().splitlines()[-1] == f"run folder: {tmp_path/'run'}", r.stdout[-1000:]
    h = pd.read_csv(tmp_path/'run'/'history.csv')
    assert h.phase.unique().tolist() == ['head_warmup', 'fine_tune']
    m = __import__('json').loads((tmp_path/'run'/'metrics.json').read_text())
    assert (m['n_train'], m['n_valid']) == (42, 18)
