"End to end through the CLI on the real leaves-mini data: train, predict, TTA, report, ensemble, cv, stats, launchers"
import json
import pandas as pd
from PIL import Image
from conftest import cli, MINI, LEAVES

def test_train_writes_a_complete_run(mini_run):
    out, r = mini_run
    for f in ('config.json', 'split.csv', 'history.csv', 'curves.png', 'model.safetensors', 'model.json', 'export.pkl',
              'valid_probs.csv', 'metrics.json', 'checkpoints/last.pth'):
        assert (out/f).exists(), f
    m = json.loads((out/'metrics.json').read_text())
    # measured 0.87-0.97 on the 30 validation images with seeds 42, 2, 3 (10 species, chance 0.10): the head warm-up's, as a lone image epoch did not beat it
    assert m['valid_acc'] >= 0.8
    assert len(m['per_class']) == 10
    cfg = json.loads((out/'config.json').read_text())
    assert cfg['options']['size'] == 96 and cfg['versions']['torch'] and len(cfg['data_fingerprint']) == 16
    assert 'package' in cfg['weights_source'] or 'Hugging Face' in cfg['weights_source']
    h = pd.read_csv(out/'history.csv')
    assert 'too few to beat the warmed-up head' in r.stdout, r.stdout[-1000:]  # the 4 default tail epochs are 16 steps on 270 images: skipped
    assert set(h.phase) == {'head_warmup', 'fine_tune'}  # the head warm-up, then --epochs 1

def test_predict_submission_matches_test_csv(mini_run, tmp_path):
    out, _ = mini_run
    sub_fn = tmp_path/'submission.csv'
    r = cli('predict', '--run', out, '--data', MINI, '--out', sub_fn, '--tta', 0, check=True)
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
    assert len(lines) == 2 and lines[0].startswith(str(MINI/t.image[0]))
    assert t.label[0] in lines[0]  # the true species is among the top 2

def test_report_pngs(mini_run, tmp_path):
    out, _ = mini_run
    r = cli('report', '--run', out, '--data', MINI, '--out', tmp_path, check=True)
    assert 'weakest species' in r.stdout
    for f in ('confusion_matrix.png', 'top_losses.png'):
        with Image.open(tmp_path/f) as im: im.verify()
    assert len(pd.read_csv(tmp_path/'per_class_accuracy.csv')) == 10

def test_ensemble_of_two_runs(mini_run, tmp_path):
    out, _ = mini_run
    other = tmp_path/'r64'
    cli('train', '--data', MINI, '--size', 64, '--epochs', 1, '--warmup-frac', 0.5, '--final-size', 80,
        '--cache', 'disk', '--out', other, '--quiet', check=True)
    assert json.loads((other/'model.json').read_text())['size'] == 80  # predicts at the size it finished on
    assert not list(other.glob('features-*'))  # the warm-up's feature files (and their folder) are gone
    r = cli('ensemble', out, other, '--data', MINI, '--out', tmp_path/'ens.csv', check=True)
    rows = [l.split() for l in r.stdout.splitlines() if l.strip().startswith(('mini', 'r64', 'ensemble'))]
    accs = {row[0]: float(row[-2]) for row in rows}
    ens = [v for k, v in accs.items() if k.startswith('ensemble')][0]
    assert ens >= min(accs['mini'], accs['r64'])
    sub = pd.read_csv(tmp_path/'ens.csv')
    assert (sub.label == pd.read_csv(MINI/'test_labels.csv').label).mean() >= 0.7
    for method in ('vote', 'weighted'):
        r = cli('ensemble', out, other, '--data', MINI, '--method', method, '--out', tmp_path/f'{method}.csv', check=True)
        assert f'ensemble ({method})' in r.stdout and (('weights: mini' in r.stdout) == (method == 'weighted')), r.stdout
        agree = (pd.read_csv(tmp_path/f'{method}.csv').label == sub.label).mean()
        assert agree >= 0.8, (method, agree)  # two members: vote and weights move only the close calls

def test_ensemble_refuses_other_classes(mini_run, tmp_path):
    out, _ = mini_run
    df = pd.read_csv(MINI/'train.csv')
    keep = sorted(df.label.unique())[:5]
    sub = df[df.label.isin(keep)].assign(image=lambda d: [str(MINI/f) for f in d.image])
    (tmp_path/'five').mkdir(); sub.to_csv(tmp_path/'five'/'train.csv', index=False)
    cli('train', '--data', tmp_path/'five', '--outside-data', '--size', 64, '--epochs', 0, '--out', tmp_path/'r5', '--quiet', check=True)
    r = cli('ensemble', out, tmp_path/'r5', '--data', MINI, '--out', tmp_path/'x.csv')
    assert r.returncode == 2 and 'different classes' in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path/'x.csv').exists()

def test_cv_covers_every_image(tmp_path):
    r = cli('cv', '--data', MINI, '--n-folds', 3, '--size', 64, '--epochs', 0, '--out', tmp_path/'cv', '--quiet', check=True)
    oof = pd.read_csv(tmp_path/'cv'/'oof_probs.csv')
    assert sorted(oof.image) == sorted(pd.read_csv(MINI/'train.csv').image)
    cvm = json.loads((tmp_path/'cv'/'cv.json').read_text())
    assert cvm['n_folds'] == 3 and cvm['cv_acc'] >= 0.75  # head warm-up only, 64 px: measured ~0.87

def test_ensemble_fit_on_two_cv_folders(tmp_path):
    "--method fit: weights fitted on the out-of-fold predictions two `cv` folders of the same data share"
    for seed in (1, 2):
        cli('cv', '--data', MINI, '--n-folds', 2, '--size', 32, '--epochs', 0, '--head-epochs', 3, '--seed', seed,
            '--out', tmp_path/f'cv{seed}', '--quiet', check=True)
    r = cli('ensemble', tmp_path/'cv1', tmp_path/'cv2', '--data', MINI, '--method', 'fit', '--out', tmp_path/'fit.csv', check=True)
    w = [l for l in r.stdout.splitlines() if l.startswith('weights:')]
    assert w and 'cv1' in w[0] and 'cv2' in w[0] and 'nan' not in w[0].lower(), r.stdout
    sub = pd.read_csv(tmp_path/'fit.csv')
    assert len(sub) == 60 and sub.image.tolist() == pd.read_csv(MINI/'test.csv').image.tolist()

def test_stats_on_full_data(tmp_path):
    r = cli('stats', '--data', LEAVES, '--out', tmp_path/'counts.png', check=True)  # its speed is measured in bench/, not here
    assert '14673 labelled images, 3680 test images, 176 species' in r.stdout
    with Image.open(tmp_path/'counts.png') as im: im.verify()

def test_two_processes_with_torchrun(tmp_path):
    "Data-parallel training: `torchrun --nproc_per_node 2 -m leaf_fastai.cli train` on CPU (gloo); the first process writes the run"
    import subprocess, sys
    from pathlib import Path
    out = tmp_path/'ddp'
    torchrun = Path(sys.executable).parent/'torchrun'
    r = subprocess.run([str(torchrun), '--nproc_per_node', '2', '-m', 'leaf_fastai.cli', 'train', '--data', str(MINI), '--size', '64',
                        '--valid-pct', '0.2', '--out', str(out), '--quiet'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    m = json.loads((out/'metrics.json').read_text())
    assert m['processes'] == 2
    assert m['valid_acc'] >= 0.6  # 60 validation images, 10 species (chance 0.1)
    assert r.stdout.count('head warm-up:') == 2  # each process warmed up the head on its own feature cache
    assert 'fine_tune' in set(pd.read_csv(out/'history.csv').phase)  # then one data-parallel epoch
