"""Trust II (#21) end to end through the CLI: every image read as a person sees it (EXIF orientation, 16-bit images)"""
import numpy as np, pandas as pd, pytest
from PIL import Image
from conftest import cli, MINI

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

def test_edited_model_json_is_refused(mini_run, tmp_path):
    "Reversed classes in model.json: `predict`, `report` and `ensemble` refuse the run (exit 2, naming the file) instead of writing wrong labels"
    import json, shutil
    from conftest import fails_with
    run = tmp_path/'run'; shutil.copytree(mini_run[0], run)
    meta = json.loads((run/'model.json').read_text()); meta['classes'] = meta['classes'][::-1]
    (run/'model.json').write_text(json.dumps(meta))
    fails_with(cli('predict', '--run', run, '--data', MINI, '--out', tmp_path/'sub.csv'), 'model.json', 'classes')
    assert not (tmp_path/'sub.csv').exists()
    fails_with(cli('predict', '--run', run, MINI/pd.read_csv(MINI/'test.csv').image[0]), 'model.json')
    fails_with(cli('ensemble', run, mini_run[0], '--data', MINI, '--out', tmp_path/'ens.csv'), 'model.json')
    fails_with(cli('report', '--run', run, '--data', MINI), 'model.json')

def test_bad_inputs_are_named_before_any_work(mini_run, tmp_path):
    "Each: exit 2, no traceback, one line naming the file or option and the fix"
    from conftest import fails_with, mini_copy
    run = mini_run[0]
    (tmp_path/'empty.jpg').write_bytes(b'')
    fails_with(cli('predict', '--run', run, tmp_path/'empty.jpg'), 'empty.jpg', 'cannot be read')
    fails_with(cli('predict', '--run', run, '--data', MINI, '--out', tmp_path), '--out', 'is a folder')
    fails_with(cli('ensemble', run, run, '--data', MINI, '--out', tmp_path/'e.csv'), 'named twice')
    Image.new('L', (10000, 9500)).save(tmp_path/'bomb.png')  # 95 megapixels: over PIL's limit, a few kB on disk
    r = cli('predict', '--run', run, tmp_path/'bomb.png')
    fails_with(r, 'bomb.png', 'megapixels'); assert 'DecompressionBombWarning' not in r.stderr, r.stderr[-1000:]
    d, df = mini_copy(tmp_path)
    df.assign(label=[l.upper() if i % 2 else l for i, l in enumerate(df.label)]).to_csv(d/'train.csv', index=False)
    fails_with(cli('train', '--data', d, '--out', tmp_path/'r'), 'differ only by case', '--lookalike-labels')
    assert not (tmp_path/'r').exists()  # refused before the run folder was claimed
    df.to_csv(d/'train.csv', index=False, sep=';')
    fails_with(cli('stats', '--data', d, '--out', tmp_path/'c.png'), "separated by ';'")

def test_stats_log_has_no_progress_bars(tmp_path):
    "Piped to a file, `stats` prints its lines and no bar fragments"
    r = cli('stats', '--data', MINI, '--out', tmp_path/'c.png', check=True)
    assert '█' not in r.stdout and '\r' not in r.stdout and '%' not in r.stdout, r.stdout[:300]

def test_paths_leaving_the_data_folder(tmp_path):
    "`..`, an absolute path elsewhere and a link in images/ pointing outside: refused (naming line and file) unless --outside-data; one file under two names is one image"
    import os
    from conftest import fails_with, mini_copy
    d, df = mini_copy(tmp_path)
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
    cli('stats', '--data', d, '--outside-data', '--out', tmp_path/'c.png', check=True)  # on purpose: read where they are
    pd.concat([df, df.head(1).assign(image='./' + df.image[0], label=df.label.iloc[-1])]).to_csv(d/'train.csv', index=False)
    fails_with(cli('stats', '--data', d, '--out', tmp_path/'c.png'), 'different labels')  # images/x.jpg and ./images/x.jpg
    pd.DataFrame(dict(image=['../outside/o0.jpg'])).to_csv(d/'test.csv', index=False)
    df.to_csv(d/'train.csv', index=False)
    fails_with(cli('stats', '--data', d, '--out', tmp_path/'c.png'), 'test.csv', 'outside')

@pytest.mark.parametrize('epochs', [0, 1])
def test_resume_after_stop_while_writing_the_model(tmp_path, epochs):
    "Stopped after the last epoch, while the final files were written (state.json as training left it, no model.json or metrics.json): --resume writes them, the same model as an uninterrupted run"
    import json, shutil
    run = tmp_path/'run'
    cli('train', '--data', MINI, '--size', 32, '--head-epochs', 3, '--tail-epochs', 2, '--tail-bs', 4, '--epochs', epochs, '--out', run, '--quiet', check=True)
    acc = json.loads((run/'metrics.json').read_text())['valid_acc']
    for f in ('metrics.json', 'model.json', 'model.safetensors', 'export.pkl', 'valid_probs.csv'): (run/f).unlink()
    r = cli('train', '--resume', run, '--quiet', check=True)
    assert json.loads((run/'metrics.json').read_text())['valid_acc'] == acc, r.stdout[-1000:]
    cli('predict', '--run', run, '--data', MINI, '--tta', 0, '--out', tmp_path/'sub.csv', check=True)

def test_failed_starts_leave_no_claim(tmp_path):
    "A cv refused by its data check, and a train stopped by Ctrl-C during the warm-up, leave --out as they found it: the rerun needs no --overwrite"
    import json, signal, subprocess, time
    from conftest import fails_with, mini_copy, leaf_exe
    d, df = mini_copy(tmp_path)
    df.assign(label=[*df.label[:-1], 'lonely']).to_csv(d/'train.csv', index=False)
    fails_with(cli('cv', '--data', d, '--n-folds', 3, '--out', tmp_path/'cv', '--quiet'), "'lonely' (1)")
    assert not (tmp_path/'cv').exists()
    out = tmp_path/'r'
    p = subprocess.Popen([leaf_exe(), *map(str, ('train', '--data', MINI, '--size', 96, '--head-epochs', 60, '--out', out, '--quiet'))],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a shell's background job inherits SIGINT ignored: Ctrl-C at a terminal is not
    t0 = time.time()
    while not (out/'config.json').exists() and p.poll() is None and time.time()-t0 < 300: time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    err = p.communicate(timeout=300)[1]
    assert p.returncode != 0 and not (out/'state.json').exists(), err[-1000:]  # stopped in the warm-up
    assert not out.exists() or not [f for f in out.iterdir()], list(out.iterdir())
    cli('train', '--data', MINI, '--size', 32, '--head-epochs', 2, '--tail-epochs', 0, '--out', out, '--quiet', check=True)

def test_resume_refuses_edited_config_and_changed_data(tmp_path):
    "A run stopped after its warm-up: resuming after an edit of config.json's schedule, or after train.csv's labels changed, is refused; restored, it resumes"
    import json, shutil
    from conftest import fails_with, mini_copy
    d, df = mini_copy(tmp_path)
    run = tmp_path/'run'
    cli('train', '--data', d, '--size', 32, '--head-epochs', 2, '--tail-epochs', 0, '--epochs', 1, '--out', run, '--quiet', check=True)
    for f in ('metrics.json', 'model.json'): (run/f).unlink()  # as if stopped at the end (see the test above)
    st = json.loads((run/'state.json').read_text()); st.update(phase='warmup', epochs_done=0)  # ... or right after the warm-up
    (run/'state.json').write_text(json.dumps(st))
    cfg_file = run/'config.json'; cfg = cfg_file.read_text()
    c = json.loads(cfg); c['options']['epochs'] = 2; cfg_file.write_text(json.dumps(c))
    fails_with(cli('train', '--resume', run), 'config.json was changed', "epochs: 1 -> 2")
    cfg_file.write_text(cfg)
    (d/'train.csv').write_text(pd.read_csv(d/'train.csv').assign(label=lambda t: t.label.sample(frac=1, random_state=0).values).to_csv(index=False))
    fails_with(cli('train', '--resume', run), 'changed since')
    df.to_csv(d/'train.csv', index=False)
    cli('train', '--resume', run, '--quiet', check=True)
    assert json.loads((run/'metrics.json').read_text())['valid_acc'] > 0

def test_sigterm_to_the_process_group(tmp_path):
    "SIGTERM sent to the whole process group during image epochs (a batch system, `kill -- -PGID`): the run stops as on Ctrl-C and says how to resume; no DataLoader worker error"
    import json, os, signal, subprocess, time
    from conftest import leaf_exe
    out, errf = tmp_path/'r', tmp_path/'err.txt'
    with open(errf, 'w') as log:
        p = subprocess.Popen([leaf_exe(), *map(str, ('train', '--data', MINI, '--size', 64, '--tail-epochs', 0, '--epochs', 4, '--head-epochs', 3,
                              '--num-workers', 1, '--out', out, '--quiet'))], stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
        t0 = time.time()
        def phase():
            try: return json.loads((out/'state.json').read_text()).get('phase')
            except (OSError, ValueError): return None
        while phase() != 'fine_tune' and p.poll() is None and time.time()-t0 < 600: time.sleep(0.1)
        time.sleep(1)  # inside the next epoch, workers running
        if p.poll() is None: os.killpg(p.pid, signal.SIGTERM)
        rc = p.wait(timeout=300)
    err = errf.read_text()
    assert phase() == 'fine_tune', err[-2000:]
    assert rc == 2 and 'leaf_fastai train --resume' in err, (rc, err[-2000:])
    assert 'killed by signal' not in err and 'exited unexpectedly' not in err and 'Traceback' not in err, err[-2000:]

def test_report_names_a_deleted_validation_image(tmp_path):
    "`report --data` after a validation image was deleted: exit 2 naming it; after train.csv's labels changed: a note that the run's own labels are used"
    import shutil
    from conftest import fails_with, mini_copy
    d, df = mini_copy(tmp_path)
    run = tmp_path/'run'
    cli('train', '--data', d, '--size', 32, '--head-epochs', 2, '--tail-epochs', 0, '--out', run, '--quiet', check=True)
    v = pd.read_csv(run/'split.csv').query('is_valid').image.iloc[0]
    df.assign(label=df.label.sample(frac=1, random_state=0).values).to_csv(d/'train.csv', index=False)
    r = cli('report', '--run', run, '--data', d, '--out', tmp_path/'rep', check=True)
    assert "have another label in" in r.stderr, r.stderr[-1000:]
    df.to_csv(d/'train.csv', index=False)
    (d/v).unlink()
    fails_with(cli('report', '--run', run, '--data', d, '--out', tmp_path/'rep'), v, 'split.csv')
