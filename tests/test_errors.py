"""Bad input through the CLI: exit code 2, a message naming the file/row/option and the fix, no traceback, no partial
output; and a run folder edited or broken after training is refused, not trusted"""
import json, os, shutil
import pandas as pd, pytest, torch
from PIL import Image
from conftest import cli, fails_with, mini_copy, copy_run, MINI

def train(d, out, *extra, **kw):
    "A tiny run (32 px, warm-up only) that checks its images first, as by default"
    return cli('train', '--data', d, '--size', 32, '--epochs', 0, '--head-epochs', 3, '--tail-epochs', 0, '--num-workers', 0, '--out', out, '--quiet', *extra, **kw)

# ---------------------------------------------------------------- the data

def test_missing_train_csv(tmp_path):
    (tmp_path/'images').mkdir()
    fails_with(train(tmp_path, tmp_path/'run'), 'train.csv not found', '--data')
    assert not (tmp_path/'run').exists()

def test_missing_label_column(tmp_path):
    d, df = mini_copy(tmp_path, n=10)
    df.rename(columns={'label': 'species'}).to_csv(d/'train.csv', index=False)
    fails_with(train(d, tmp_path/'run'), "no column 'label'", 'species', '--label-col')
    r = train(d, tmp_path/'run', '--label-col', 'species', check=True)
    assert r.stdout.strip().splitlines()[-1] == f"run folder: {tmp_path/'run'}", r.stdout[-500:]
    assert json.loads((tmp_path/'run'/'model.json').read_text())['classes'] == sorted(df.label.unique())

def test_empty_csv(tmp_path):
    d, _ = mini_copy(tmp_path, n=1)
    (d/'train.csv').write_text('')
    fails_with(train(d, tmp_path/'run'), 'is empty')

def test_listed_image_absent(tmp_path):
    d, df = mini_copy(tmp_path)
    df.loc[3, 'image'] = '/nowhere/gone.jpg'
    df.to_csv(d/'train.csv', index=False)
    fails_with(train(d, tmp_path/'run'), '1 of 300 listed images', 'line 5: /nowhere/gone.jpg')

@pytest.mark.parametrize('kind', ['corrupt', 'truncated'])
def test_unreadable_image(tmp_path, kind):
    "Found by the image check before training (the default --check)"
    d, df = mini_copy(tmp_path, n=5)  # 40 training images: more than a batch
    raw = (MINI/'images'/'0.jpg').read_bytes()
    bad = d/'bad.jpg'
    bad.write_bytes(raw[:len(raw)//3] if kind=='truncated' else b'\xff\xd8' + os.urandom(3000))
    df.loc[0, 'image'] = str(bad)
    df.to_csv(d/'train.csv', index=False)
    fails_with(train(d, tmp_path/'run'), 'cannot be read', 'bad.jpg')
    assert not (tmp_path/'run').exists()

def test_class_too_small_for_folds(tmp_path):
    d, df = mini_copy(tmp_path, n=5)
    shutil.copy(MINI/df.image[0], d/'lonely.jpg')
    pd.concat([df, pd.DataFrame({'image': ['lonely.jpg'], 'label': ['lonely_species']})]).to_csv(d/'train.csv', index=False)
    fails_with(cli('cv', '--data', d, '--n-folds', 5, '--out', tmp_path/'cv', '--quiet'), "'lonely_species' (1)", 'fewer folds')

def test_paths_leaving_the_data_folder(tmp_path):
    "`..`, an absolute path elsewhere and a link in images/ pointing outside: refused (naming line and file) unless --outside-data; one file under two names is one image"
    d, df = mini_copy(tmp_path, n=3)
    outside = tmp_path/'outside'; outside.mkdir()
    for i, f in enumerate(df.image[:3]): (outside/f'o{i}.jpg').write_bytes((d/f).read_bytes())
    os.symlink(outside/'o2.jpg', d/'images'/'link.jpg')
    for bad in ('../outside/o0.jpg', str(outside/'o1.jpg'), 'images/link.jpg'):
        df.assign(image=[bad, *df.image[1:]]).to_csv(d/'train.csv', index=False)
        r = cli('train', '--data', d, '--out', tmp_path/'r', '--quiet')
        fails_with(r, 'line 2', 'outside', '--outside-data')
        assert not (tmp_path/'r').exists()
        fails_with(cli('stats', '--data', d, '--out', tmp_path/'c.png'), 'outside')
    df.assign(image=['../outside/o0.jpg', *df.image[1:]]).to_csv(d/'train.csv', index=False)
    r = cli('stats', '--data', d, '--outside-data', '--out', tmp_path/'c.png', check=True)  # on purpose: read where they are
    assert '30 labelled images, 0 test images, 10 species' in r.stdout, r.stdout
    pd.concat([df, df.head(1).assign(image='./' + df.image[0], label=df.label.iloc[-1])]).to_csv(d/'train.csv', index=False)
    fails_with(cli('stats', '--data', d, '--out', tmp_path/'c.png'), 'different labels')  # images/x.jpg and ./images/x.jpg
    pd.DataFrame(dict(image=['../outside/o0.jpg'])).to_csv(d/'test.csv', index=False)
    df.to_csv(d/'train.csv', index=False)
    fails_with(cli('stats', '--data', d, '--out', tmp_path/'c.png'), 'test.csv', 'outside')

# ---------------------------------------------------------------- options and weights

def test_bad_warmup_frac(tmp_path):
    fails_with(train(MINI, tmp_path/'run', '--warmup-frac', 0), '--warmup-frac', '(0, 1]')
    assert not (tmp_path/'run').exists()

def test_unknown_arch(tmp_path):
    fails_with(train(MINI, tmp_path/'run', '--arch', 'resnet50dd'), "Unknown --arch 'resnet50dd'", 'resnet50d')

def test_resnet_without_weights_says_how(tmp_path):
    "Hermetic: offline, with an empty Hugging Face cache, whatever this machine has downloaded before"
    offline = dict(HF_HUB_OFFLINE=1, HF_HOME=tmp_path/'hf_home')
    fails_with(train(MINI, tmp_path/'run', '--arch', 'resnet50d', env=offline), "No pretrained weights found for 'resnet50d'", '--weights PATH', '--pretrained none')

def test_weights_of_another_arch(tmp_path):
    import timm
    torch.save(timm.create_model('tf_efficientnet_lite0').state_dict(), tmp_path/'lite0.pth')
    fails_with(train(MINI, tmp_path/'run', '--arch', 'resnet18', '--weights', tmp_path/'lite0.pth'), 'do not fit resnet18', 'conv1.weight')

def test_resnet_with_local_weights_trains(tmp_path):
    "--arch resnet50d works as soon as --weights points at a file (here: a saved state dict)"
    import timm
    from safetensors.torch import save_file
    save_file(timm.create_model('resnet18').state_dict(), tmp_path/'r18.safetensors')
    train(MINI, tmp_path/'run', '--arch', 'resnet18', '--weights', tmp_path/'r18.safetensors', check=True)
    assert 'r18.safetensors' in json.loads((tmp_path/'run'/'config.json').read_text())['weights_source']
    assert json.loads((tmp_path/'run'/'model.json').read_text())['arch'] == 'resnet18'

def test_output_not_writable(tmp_path):
    (tmp_path/'afile').write_text('x')
    fails_with(train(MINI, tmp_path/'afile'/'run'), 'Cannot write to', '--out')

def test_debug_shows_traceback(tmp_path):
    r = cli('train', '--data', tmp_path/'nowhere', '--debug')
    assert r.returncode == 2 and 'Traceback' in r.stderr, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[-1] == f"leaf_fastai train: error: Data folder {tmp_path/'nowhere'} does not exist. Pass --data DIR, the folder holding train.csv and the images.", r.stderr[-1000:]

def test_same_seed_same_metrics(tmp_path):
    "Two runs with the same seed (image epochs with the default DataLoader worker): the same split, history and metrics"
    for i in (0, 1): cli('train', '--data', MINI, '--size', 32, '--head-epochs', 3, '--tail-epochs', 0, '--epochs', 1, '--seed', 7,
                         '--no-check', '--out', tmp_path/f'run{i}', '--quiet', check=True)
    m0, m1 = [json.loads((tmp_path/f'run{i}'/'metrics.json').read_text()) for i in (0, 1)]
    assert m0['valid_acc'] == m1['valid_acc'] and m0['per_class'] == m1['per_class']
    h0, h1 = [pd.read_csv(tmp_path/f'run{i}'/'history.csv') for i in (0, 1)]
    pd.testing.assert_frame_equal(h0, h1)
    s0, s1 = [pd.read_csv(tmp_path/f'run{i}'/'split.csv') for i in (0, 1)]
    pd.testing.assert_frame_equal(s0, s1)

# ---------------------------------------------------------------- a run folder changed after training

def test_tampered_model_file(tiny_run, tmp_path):
    bad = copy_run(tiny_run, tmp_path/'bad')
    raw = bytearray((bad/'model.safetensors').read_bytes()); raw[10:40] = b'x'*30
    (bad/'model.safetensors').write_bytes(bytes(raw))
    fails_with(cli('predict', '--run', bad, '--data', MINI, '--out', tmp_path/'s.csv'), 'model.safetensors', 'damaged')
    assert not (tmp_path/'s.csv').exists()

def test_pickle_needs_trust(tiny_run, tmp_path):
    only_pkl = copy_run(tiny_run, tmp_path/'pkl'); (only_pkl/'model.safetensors').unlink()
    fails_with(cli('predict', '--run', only_pkl, '--data', MINI, '--out', tmp_path/'s.csv'), '--trust-pickle')
    cli('predict', '--run', only_pkl, '--data', MINI, '--out', tmp_path/'s.csv', '--tta', 0, '--trust-pickle', check=True)
    assert len(pd.read_csv(tmp_path/'s.csv')) == 60

def test_edited_model_json_is_refused(tiny_run, tmp_path):
    "Reversed classes in model.json: `predict`, `report` and `ensemble` refuse the run (exit 2, naming the file) instead of writing wrong labels"
    run = copy_run(tiny_run, tmp_path/'run')
    meta = json.loads((run/'model.json').read_text()); meta['classes'] = meta['classes'][::-1]
    (run/'model.json').write_text(json.dumps(meta))
    fails_with(cli('predict', '--run', run, '--data', MINI, '--out', tmp_path/'sub.csv'), 'model.json', 'classes')
    assert not (tmp_path/'sub.csv').exists()
    fails_with(cli('predict', '--run', run, MINI/pd.read_csv(MINI/'test.csv').image[0]), 'model.json')
    fails_with(cli('ensemble', run, tiny_run, '--data', MINI, '--out', tmp_path/'ens.csv'), 'model.json')
    fails_with(cli('report', '--run', run, '--data', MINI), 'model.json')

def test_bad_inputs_are_named_before_any_work(tiny_run, tmp_path):
    "Each: exit 2, no traceback, one line naming the file or option and the fix"
    run = tiny_run
    (tmp_path/'empty.jpg').write_bytes(b'')
    fails_with(cli('predict', '--run', run, tmp_path/'empty.jpg'), 'empty.jpg', 'cannot be read')
    fails_with(cli('predict', '--run', run, '--data', MINI, '--out', tmp_path), '--out', 'is a folder')
    fails_with(cli('ensemble', run, run, '--data', MINI, '--out', tmp_path/'e.csv'), 'named twice')
    Image.new('L', (10000, 9500)).save(tmp_path/'bomb.png')  # 95 megapixels: over PIL's limit, a few kB on disk
    r = cli('predict', '--run', run, tmp_path/'bomb.png')
    fails_with(r, 'bomb.png', 'megapixels'); assert 'DecompressionBombWarning' not in r.stderr, r.stderr[-1000:]
    d, df = mini_copy(tmp_path, n=3)
    df.assign(label=[l.upper() if i % 2 else l for i, l in enumerate(df.label)]).to_csv(d/'train.csv', index=False)
    fails_with(cli('train', '--data', d, '--out', tmp_path/'r'), 'differ only by case', '--lookalike-labels')
    assert not (tmp_path/'r').exists()  # refused before the run folder was claimed
    df.to_csv(d/'train.csv', index=False, sep=';')
    fails_with(cli('stats', '--data', d, '--out', tmp_path/'c.png'), "separated by ';'")

def test_report_names_a_deleted_validation_image(tmp_path):
    "`report --data` after a validation image was deleted: exit 2 naming it; after train.csv's labels changed: a note that the run's own labels are used"
    d, df = mini_copy(tmp_path, n=10)
    run = tmp_path/'run'
    train(d, run, check=True)
    v = pd.read_csv(run/'split.csv').query('is_valid').image.iloc[0]
    df.assign(label=df.label.sample(frac=1, random_state=0).values).to_csv(d/'train.csv', index=False)
    r = cli('report', '--run', run, '--data', d, '--out', tmp_path/'rep', check=True)
    assert "have another label in" in r.stderr, r.stderr[-1000:]
    df.to_csv(d/'train.csv', index=False)
    (d/v).unlink()
    fails_with(cli('report', '--run', run, '--data', d, '--out', tmp_path/'rep'), v, 'split.csv')
