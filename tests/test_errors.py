"Bad input through the CLI: exit code 2, a message naming the file/row/option and the fix, no traceback, no partial output"
import os, signal, subprocess, json, time, shutil, sys
import pandas as pd, pytest, torch
from PIL import Image
from conftest import cli, MINI, fails_with, mini_copy

def train(d, out, *extra, **kw): return cli('train', '--data', d, '--size', 64, '--epochs', 0, '--out', out, '--quiet', *extra, **kw)

def test_missing_train_csv(tmp_path):
    (tmp_path/'images').mkdir()
    fails_with(train(tmp_path, tmp_path/'run'), 'train.csv not found', '--data')
    assert not (tmp_path/'run').exists()

def test_missing_label_column(tmp_path):
    d, df = mini_copy(tmp_path)
    df.rename(columns={'label': 'species'}).to_csv(d/'train.csv', index=False)
    fails_with(train(d, tmp_path/'run'), "no column 'label'", 'species', '--label-col')
    assert train(d, tmp_path/'run', '--label-col', 'species').returncode == 0

def test_empty_csv(tmp_path):
    d, _ = mini_copy(tmp_path)
    (d/'train.csv').write_text('')
    fails_with(train(d, tmp_path/'run'), 'is empty')

def test_listed_image_absent(tmp_path):
    d, df = mini_copy(tmp_path)
    df.loc[3, 'image'] = '/nowhere/gone.jpg'
    df.to_csv(d/'train.csv', index=False)
    fails_with(train(d, tmp_path/'run'), '1 of 300 listed images', 'line 5: /nowhere/gone.jpg')

@pytest.mark.parametrize('kind', ['corrupt', 'truncated'])
def test_unreadable_image(tmp_path, kind):
    d, df = mini_copy(tmp_path)
    raw = (MINI/'images'/'0.jpg').read_bytes()
    bad = d/'bad.jpg'
    bad.write_bytes(raw[:len(raw)//3] if kind=='truncated' else b'\xff\xd8' + os.urandom(3000))
    df.loc[0, 'image'] = str(bad)
    df.to_csv(d/'train.csv', index=False)
    fails_with(train(d, tmp_path/'run'), 'cannot be read', 'bad.jpg')

def test_odd_images_work(tmp_path):
    "RGBA/grayscale/palette PNGs, a CMYK JPEG and a 6000x4000 image train fine"
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
    r = cli('train', '--data', d, '--size', 64, '--epochs', 1, '--valid-pct', 0.3, '--out', tmp_path/'run', '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]

def test_class_too_small_for_folds(tmp_path):
    d, df = mini_copy(tmp_path)
    shutil.copy(MINI/df.image[0], d/'lonely.jpg')
    pd.concat([df, pd.DataFrame({'image': ['lonely.jpg'], 'label': ['lonely_species']})]).to_csv(d/'train.csv', index=False)
    fails_with(cli('cv', '--data', d, '--n-folds', 5, '--out', tmp_path/'cv', '--quiet'), "'lonely_species' (1)", 'fewer folds')

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
    r = train(MINI, tmp_path/'run', '--arch', 'resnet18', '--weights', tmp_path/'r18.safetensors')
    assert r.returncode == 0, r.stderr[-2000:]
    assert 'r18.safetensors' in json.loads((tmp_path/'run'/'config.json').read_text())['weights_source']

def test_output_not_writable(tmp_path):
    (tmp_path/'afile').write_text('x')
    fails_with(train(MINI, tmp_path/'afile'/'run'), 'Cannot write to', '--out')

def test_tampered_model_file(mini_run, tmp_path):
    out, _ = mini_run
    bad = tmp_path/'bad'; shutil.copytree(out, bad)
    raw = bytearray((bad/'model.safetensors').read_bytes()); raw[10:40] = b'x'*30
    (bad/'model.safetensors').write_bytes(bytes(raw))
    fails_with(cli('predict', '--run', bad, '--data', MINI, '--out', tmp_path/'s.csv'), 'damaged')
    assert not (tmp_path/'s.csv').exists()

def test_pickle_needs_trust(mini_run, tmp_path):
    out, _ = mini_run
    only_pkl = tmp_path/'pkl'; shutil.copytree(out, only_pkl); (only_pkl/'model.safetensors').unlink()
    fails_with(cli('predict', '--run', only_pkl, '--data', MINI, '--out', tmp_path/'s.csv'), '--trust-pickle')
    r = cli('predict', '--run', only_pkl, '--data', MINI, '--out', tmp_path/'s.csv', '--trust-pickle')
    assert r.returncode == 0, r.stderr[-2000:]
    assert len(pd.read_csv(tmp_path/'s.csv')) == 60

def test_debug_shows_traceback(tmp_path):
    r = cli('train', '--data', tmp_path/'nowhere', '--debug')
    assert r.returncode == 2 and 'Traceback' in r.stderr

def test_same_seed_same_metrics(tmp_path):
    rs = [train(MINI, tmp_path/f'run{i}', '--epochs', 1, '--seed', 7) for i in (0, 1)]
    for r in rs: assert r.returncode == 0, r.stderr[-2000:]
    m0, m1 = [json.loads((tmp_path/f'run{i}'/'metrics.json').read_text()) for i in (0, 1)]
    assert m0['valid_acc'] == m1['valid_acc'] and m0['per_class'] == m1['per_class']
    h0, h1 = [pd.read_csv(tmp_path/f'run{i}'/'history.csv') for i in (0, 1)]
    pd.testing.assert_frame_equal(h0, h1)
    s0, s1 = [pd.read_csv(tmp_path/f'run{i}'/'split.csv') for i in (0, 1)]
    pd.testing.assert_frame_equal(s0, s1)

def test_interrupt_and_resume(tmp_path):
    "SIGINT during fine-tuning keeps the last finished epoch; --resume finishes the same 3-epoch schedule"
    out = tmp_path/'run'
    venv = Path(sys.executable).parent/"leaf_fastai"
    exe = str(venv) if venv.exists() else shutil.which("leaf_fastai")
    log = open(tmp_path/'stderr.txt', 'w')  # a file, not a pipe: a full pipe would block the run
    p = subprocess.Popen([exe, 'train', '--data', str(MINI), '--size', '64', '--epochs', '3', '--out', str(out), '--quiet'],
                         stdout=subprocess.DEVNULL, stderr=log, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # background shells ignore SIGINT
    deadline = time.time() + 1200  # generous: CI machines can be busy
    while time.time() < deadline:
        st = out/'state.json'
        if st.exists() and json.loads(st.read_text()).get('phase') == 'fine_tune': break
        time.sleep(0.2)
    assert time.time() < deadline, "the run never reached its first fine-tuning epoch"
    p.send_signal(signal.SIGINT)
    p.wait(timeout=120); log.close()
    err = (tmp_path/'stderr.txt').read_text()
    assert p.returncode == 2 and 'leaf_fastai train --resume' in err, err[-2000:]
    done = json.loads((out/'state.json').read_text())['epochs_done']
    assert 1 <= done < 3 and not (out/'metrics.json').exists()
    r = cli('train', '--resume', out, '--quiet')
    assert r.returncode == 0, r.stderr[-2000:]
    h = pd.read_csv(out/'history.csv')
    assert h[h.phase == 'fine_tune'].epoch.tolist() == [0, 1, 2]
    assert json.loads((out/'metrics.json').read_text())['valid_acc'] >= 0.7

from pathlib import Path
