"End to end through the CLI on the real leaves-mini data, as a user runs it: train, predict, TTA, report, ensemble, cv, stats, torchrun"
import json, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from PIL import Image
from conftest import cli, fails_with, copy_run, MINI, LEAVES, TINY

def table(stdout) -> dict:
    "`ensemble`'s table: member (or 'ensemble (method)') -> valid_acc as printed"
    rows = [l.rsplit(None, 2) for l in stdout.splitlines() if l.strip() and not l.startswith(('member', 'weights:', 'wrote'))]
    return {r[0].strip(): r[1] for r in rows if len(r) == 3 and r[2].isdigit()}

def ens_valid_acc(runs, method):
    "The ensemble's validation accuracy computed here from the members' valid_probs.csv, as the table must print it"
    vs = [pd.read_csv(r/'valid_probs.csv', dtype={'image': str, 'label': str}).set_index('image') for r in runs]
    common = vs[0].index.intersection(vs[1].index)
    classes = [c for c in vs[0].columns if c != 'label']
    P = np.stack([v.loc[common, classes].values for v in vs])
    labels = vs[0].loc[common].label.values
    acc = lambda p: float((np.array(classes)[p.argmax(-1)] == labels).mean())
    if method == 'vote': comb = sum(np.eye(len(classes))[p.argmax(1)] for p in P) + P.mean(0)*1e-3
    elif method == 'weighted': w = np.array([acc(p) for p in P]); comb = np.tensordot(w/w.sum(), P, 1)
    else: comb = P.mean(0)
    return [f'{acc(p):.4f}' for p in P], f'{acc(comb):.4f}'

@pytest.fixture(scope='module')
def small_run(tmp_path_factory):
    "A second member for the ensembles, through the other training paths: half the images in the warm-up, features on disk, progressive resizing 64 -> 80 px"
    out = tmp_path_factory.mktemp('small')/'small'
    cli('train', '--data', MINI, '--size', 64, '--epochs', 1, '--warmup-frac', 0.5, '--final-size', 80, '--cache', 'disk',
            '--no-check', '--out', out, '--quiet', check=True)
    return out

def test_train_writes_a_complete_run(mini_run):
    out, r = mini_run
    for f in ('config.json', 'split.csv', 'history.csv', 'curves.png', 'model.safetensors', 'model.json', 'export.pkl',
              'valid_probs.csv', 'metrics.json', 'checkpoints/last.pth'):
        assert (out/f).exists(), f
    m = json.loads((out/'metrics.json').read_text())
    # measured 0.87-0.97 on the 30 validation images with seeds 42, 2, 3 (10 species, chance 0.10): the head warm-up's, as a lone image epoch did not beat it
    assert m['valid_acc'] >= 0.8
    assert len(m['per_class']) == 10 and (m['n_train'], m['n_valid'], m['processes']) == (270, 30, 1)
    assert m['image_cache_mb'] == round(300*3*96*96/2**20)  # the pass kept the 8-bit images (train and valid) for the image epoch
    cfg = json.loads((out/'config.json').read_text())
    assert cfg['options']['size'] == 96 and cfg['versions']['torch'] and len(cfg['data_fingerprint']) == 16
    assert 'package' in cfg['weights_source'] or 'Hugging Face' in cfg['weights_source']
    h = pd.read_csv(out/'history.csv')
    assert 'too few to beat the warmed-up head' in r.stdout, r.stdout[-1000:]  # the 4 default tail epochs are 16 steps on 270 images: skipped
    assert h.phase.unique().tolist() == ['head_warmup', 'fine_tune'] and (h.phase == 'fine_tune').sum() == 1  # the head warm-up, then --epochs 1
    assert r.stdout.strip().splitlines()[-1] == f'run folder: {out}'

def test_predict_submission_matches_test_csv(mini_run, tmp_path):
    out, _ = mini_run
    sub_fn = tmp_path/'submission.csv'
    r = cli('predict', '--run', out, '--data', MINI, '--out', sub_fn, '--tta', 0, check=True)
    assert f'wrote {sub_fn} (60 rows; engine: torch)' in r.stdout, r.stdout
    sub, test = pd.read_csv(sub_fn), pd.read_csv(MINI/'test.csv')
    assert sub.columns.tolist() == ['image', 'label'] and sub.image.tolist() == test.image.tolist()
    truth = pd.read_csv(MINI/'test_labels.csv')
    acc = (sub.label == truth.label).mean()
    assert acc >= 0.7, acc  # measured 0.78 in CI (96 px, warm-up + 1 epoch) on the 60 held-out images; chance is 0.1
    probs = pd.read_csv(tmp_path/'submission_probs.csv')
    assert probs.shape == (60, 11) and abs(probs.iloc[:, 1:].sum(axis=1) - 1).max() < 1e-3
    # TTA runs and is as good within noise
    r = cli('predict', '--run', out, '--data', MINI, '--out', tmp_path/'tta.csv', '--tta', 2, check=True)
    acc_tta = (pd.read_csv(tmp_path/'tta.csv').label == truth.label).mean()
    assert acc_tta >= 0.7, acc_tta
    moved = (pd.read_csv(tmp_path/'tta_probs.csv').iloc[:, 1:] - probs.iloc[:, 1:]).abs().max().max()
    assert moved > 1e-3, moved  # the augmented views were averaged in: --tta is not ignored

def test_predict_single_images_prints_top_k(mini_run):
    out, _ = mini_run
    t = pd.read_csv(MINI/'test_labels.csv')
    r = cli('predict', '--run', out, MINI/t.image[0], MINI/t.image[1], '--k', 2, check=True)
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    assert len(lines) == 2 and lines[0].startswith(str(MINI/t.image[0]) + ': ') and lines[1].startswith(str(MINI/t.image[1]) + ': ')
    assert all(len(l.split(': ', 1)[1].split(', ')) == 2 for l in lines), lines  # --k 2: two species each
    assert t.label[0] in lines[0]  # the true species is among the top 2

def test_report_pngs(mini_run, tmp_path):
    out, _ = mini_run
    r = cli('report', '--run', out, '--data', MINI, '--out', tmp_path, check=True)
    acc = json.loads((out/'metrics.json').read_text())['valid_acc']
    assert f'validation accuracy {acc:.4f} on 30 images' in r.stdout and 'weakest species' in r.stdout, r.stdout
    for f in ('confusion_matrix.png', 'top_losses.png'):
        with Image.open(tmp_path/f) as im: im.verify()
    assert len(pd.read_csv(tmp_path/'per_class_accuracy.csv')) == 10

def test_ensemble_of_two_runs(mini_run, small_run, tmp_path):
    "mean (with the default TTA), vote and weighted: the table prints each member's and the ensemble's validation accuracy as computed from their valid_probs.csv"
    out, other = mini_run[0], small_run
    assert json.loads((other/'model.json').read_text())['size'] == 80  # predicts at the size it finished on (--final-size)
    assert not list(other.glob('features-*'))  # the warm-up's feature files (and their folder) are gone
    r = cli('ensemble', out, other, '--data', MINI, '--out', tmp_path/'ens.csv', check=True)
    members, ens = ens_valid_acc([out, other], 'mean')
    assert table(r.stdout) == {'mini': members[0], 'small': members[1], 'ensemble (mean)': ens}, r.stdout
    sub = pd.read_csv(tmp_path/'ens.csv')
    assert sub.image.tolist() == pd.read_csv(MINI/'test.csv').image.tolist()
    assert (sub.label == pd.read_csv(MINI/'test_labels.csv').label).mean() >= 0.7
    for method in ('vote', 'weighted'):
        r = cli('ensemble', out, other, '--data', MINI, '--method', method, '--tta', 0, '--out', tmp_path/f'{method}.csv', check=True)
        assert table(r.stdout) == {'mini': members[0], 'small': members[1], f'ensemble ({method})': ens_valid_acc([out, other], method)[1]}, r.stdout
        assert ('weights: mini' in r.stdout) == (method == 'weighted'), r.stdout
        agree = (pd.read_csv(tmp_path/f'{method}.csv').label == sub.label).mean()
        assert agree >= 0.8, (method, agree)  # two members: vote and weights move only the close calls

def test_ensemble_refuses_other_classes(tiny_run, tmp_path):
    df = pd.read_csv(MINI/'train.csv')
    keep = sorted(df.label.unique())[:5]
    sub = df[df.label.isin(keep)].assign(image=lambda d: [str(MINI/f) for f in d.image])
    (tmp_path/'five').mkdir(); sub.to_csv(tmp_path/'five'/'train.csv', index=False)
    cli('train', '--data', tmp_path/'five', '--outside-data', *TINY, '--out', tmp_path/'r5', check=True)
    fails_with(cli('ensemble', tiny_run, tmp_path/'r5', '--data', MINI, '--out', tmp_path/'x.csv'), f"{tmp_path/'r5'} and {tiny_run} have different classes (5 vs 10;")
    assert not (tmp_path/'x.csv').exists()

@pytest.fixture(scope='module')
def cv_pair(tiny_cv, tmp_path_factory):
    "Two `cv` folders of leaves-mini (2 folds, seeds 1 and 2): the shared tiny_cv and one more"
    out = tmp_path_factory.mktemp('cvpair')/'cv2'
    cli('cv', '--data', MINI, '--n-folds', 2, *TINY, '--seed', 2, '--out', out, check=True)
    return tiny_cv, out

def test_cv_covers_every_image(cv_pair):
    cv = cv_pair[0]
    oof = pd.read_csv(cv/'oof_probs.csv')
    assert sorted(oof.image) == sorted(pd.read_csv(MINI/'train.csv').image)
    cvm = json.loads((cv/'cv.json').read_text())
    folds = [json.loads((cv/f'fold{k}'/'metrics.json').read_text()) for k in (0, 1)]
    assert cvm['n_folds'] == 2 and cvm['n_images'] == 300 and cvm['fold_acc'] == [f['valid_acc'] for f in folds]
    assert [f['n_valid'] for f in folds] == [150, 150]
    classes = [c for c in oof.columns if c not in ('image', 'label')]
    acc = (np.array(classes)[oof[classes].values.argmax(1)] == oof.label.values).mean()
    assert abs(cvm['cv_acc'] - acc) < 1e-9 and abs(acc - np.mean(cvm['fold_acc'])) < 1e-9, (cvm, acc)  # two folds of 150: the mean
    assert cvm['cv_acc'] >= 0.25, cvm  # head warm-up only, 32 px: measured 0.41 (chance 0.1; labels out of line with the images would give that)

def test_ensemble_fit_on_two_cv_folders(cv_pair, tmp_path):
    "--method fit: weights fitted on the out-of-fold predictions two `cv` folders of the same data share"
    r = cli('ensemble', *cv_pair, '--data', MINI, '--method', 'fit', '--tta', 0, '--out', tmp_path/'fit.csv', check=True)
    w = [l for l in r.stdout.splitlines() if l.startswith('weights:')]
    assert w and 'cv1' in w[0] and 'cv2' in w[0] and 'nan' not in w[0].lower(), r.stdout
    ws = [float(x.split()[1]) for x in w[0][len('weights:'):].split(',')]
    assert abs(sum(ws) - 1) < 2e-3 and min(ws) >= 0, ws
    sub = pd.read_csv(tmp_path/'fit.csv')
    assert len(sub) == 60 and sub.image.tolist() == pd.read_csv(MINI/'test.csv').image.tolist()

def test_stats_on_full_data(tmp_path):
    "The full Kaggle set's counts; piped to a file, its lines and no progress-bar fragments"
    r = cli('stats', '--data', LEAVES, '--out', tmp_path/'counts.png', check=True)  # its speed is measured in bench/, not here
    assert '14673 labelled images, 3680 test images, 176 species' in r.stdout
    assert '█' not in r.stdout and '\r' not in r.stdout and '%' not in r.stdout, r.stdout[:300]
    with Image.open(tmp_path/'counts.png') as im: im.verify()

def test_two_processes_with_torchrun(tmp_path):
    "Data-parallel training: `torchrun --nproc_per_node 2 -m leaf_fastai.cli train` on CPU (gloo); the first process writes the run"
    out = tmp_path/'ddp'
    torchrun = Path(sys.executable).parent/'torchrun'
    r = subprocess.run([str(torchrun), '--nproc_per_node', '2', '-m', 'leaf_fastai.cli', 'train', '--data', str(MINI), '--size', '64',
                        '--head-epochs', '3', '--no-check', '--num-workers', '0', '--valid-pct', '0.2', '--out', str(out), '--quiet'],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out/'metrics.json').read_text())
    assert m['processes'] == 2 and m['n_valid'] == 60
    assert m['valid_acc'] >= 0.6  # 60 validation images, 10 species (chance 0.1)
    assert r.stdout.count('head warm-up:') == 2  # each process warmed up the head on its own feature cache
    assert r.stdout.count('no tail epochs on a cached trunk') == 2  # no tail under DDP: an epoch on the images instead
    h = pd.read_csv(out/'history.csv')
    assert h.phase.unique().tolist() == ['head_warmup', 'fine_tune'] and (h.phase == 'fine_tune').sum() == 1  # one data-parallel epoch
