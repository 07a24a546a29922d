"The app in a real browser: headless Chromium (Debian's package) through Playwright loads the page, uploads leaves-mini test images and bad files, and shows `leaf_fastai predict`'s top species"
import os, socket, subprocess, time, urllib.request
from pathlib import Path
import pandas as pd, pytest
from PIL import Image
from conftest import cli, leaf_exe, MINI, CHROMIUM, fails_with

ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync']

def free_port():
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture(scope='module')
def browser():
    "Debian's headless chromium (conftest stops the run when it is missing, unless LEAF_TESTS_SKIP_MISSING=1 outside CI)"
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()

@pytest.fixture(scope='module')
def served(mini_run):
    "`leaf_fastai app` on the shared leaves-mini run, as a user starts it"
    out, _ = mini_run
    port = free_port()
    proc = subprocess.Popen([leaf_exe(), 'app', '--run', str(out), '--port', str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url, t0 = f'http://127.0.0.1:{port}/', time.time()
    while True:
        if proc.poll() is not None: raise AssertionError(f"leaf_fastai app exited ({proc.returncode}):\n{proc.stdout.read()[-3000:]}")
        try: urllib.request.urlopen(url, timeout=2); break
        except OSError: pass
        assert time.time()-t0 < 180, "the app did not answer within 180 s"
        time.sleep(0.1)  # until the port answers
    yield url, out
    proc.terminate()
    try: proc.wait(30)
    except subprocess.TimeoutExpired: proc.kill(); proc.wait()

def open_page(browser, url):
    page = browser.new_page()
    page.outside = []  # requests that leave the app: there must be none
    page.on('request', lambda r: page.outside.append(r.url) if not r.url.startswith((url, 'data:', 'blob:')) else None)
    page.goto(url)
    page.wait_for_selector('#photos input[type=file]', state='attached', timeout=60_000)  # the page is built by its scripts
    return page

def test_page_shows_predicts_top_species(browser, served):
    url, out = served
    img = MINI/pd.read_csv(MINI/'test.csv').image[0]
    line = cli('predict', '--run', out, img, '--k', 1, check=True).stdout.strip().splitlines()[-1]
    want = line.split(': ', 1)[1].split()[0]
    page = open_page(browser, url)
    assert 'validation accuracy' in page.inner_text('body')
    page.set_input_files('#photos input[type=file]', [str(img)])
    page.wait_for_selector('#results .leaf-top', timeout=120_000)
    shown = page.locator('#results .leaf-top td.species').first.inner_text()
    assert shown == want, (shown, line)
    assert 'this run was right' in page.inner_text('#results')
    assert page.outside == []
    page.close()

def test_bad_files_get_a_message(browser, served, tmp_path):
    url, _ = served
    src = Image.open(MINI/pd.read_csv(MINI/'test.csv').image[1])
    (tmp_path/'notes.jpg').write_text('not a photo')
    src.convert('CMYK').save(tmp_path/'cmyk.jpg'); src.convert('RGBA').save(tmp_path/'rgba.png')
    Image.new('L', (8000, 7000)).save(tmp_path/'huge.png')  # 56 megapixels
    page = open_page(browser, url)
    page.set_input_files('#photos input[type=file]', [str(tmp_path/f) for f in ('notes.jpg', 'cmyk.jpg', 'rgba.png', 'huge.png')])
    page.wait_for_selector('#results .leaf-card', timeout=120_000)
    res = page.inner_text('#results')
    assert 'notes.jpg: cannot be classified: not an image' in res and 'huge.png: cannot be classified: too large' in res, res
    assert 'CMYK, converted to RGB' in res and 'RGBA, transparency dropped' in res
    assert page.locator('#results .leaf-top').count() == 2
    page.close()

def test_port_in_use(mini_run):
    out, _ = mini_run
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); s.listen()
        fails_with(cli('app', '--run', out, '--port', s.getsockname()[1]), 'is in use', '--port')

def _call(url, files):
    "`classify` through Gradio's HTTP API as any client can call it (no browser): the HTML it returns, or the error event's text"
    import httpx
    with httpx.Client(base_url=url, timeout=120) as c:
        ev = c.post('gradio_api/call/classify', json={'data': [files]}).raise_for_status().json()['event_id']
        text = c.get(f'gradio_api/call/classify/{ev}').text  # server-sent events, ending in `complete` or `error`
    return text

def test_page_refuses_a_file_on_the_server(served, tmp_path):
    """A request naming a file on the server instead of uploading it (an image the run would recognise, outside Gradio's
    upload folder) gets no species and no thumbnail: Gradio's upload-folder check protects the page, and this pins it.
    The same image uploaded through the same route is classified: the refused request is well formed"""
    url, _ = served
    img = MINI/pd.read_csv(MINI/'test.csv').image[0]
    secret = tmp_path/'secret.jpg'; secret.write_bytes(img.read_bytes())
    meta = {'_type': 'gradio.FileData'}
    import httpx
    with httpx.Client(base_url=url, timeout=120) as c:
        with open(img, 'rb') as f: up = c.post('gradio_api/upload', files={'files': (img.name, f, 'image/jpeg')}).raise_for_status().json()[0]
    ok = _call(url, [{'path': up, 'orig_name': img.name, 'meta': meta}])
    assert 'event: complete' in ok and 'leaf-top' in ok and 'data:image' in ok, ok[:500]  # uploaded: species and thumbnail
    for path in (str(secret), str(img.resolve())):
        res = _call(url, [{'path': path, 'orig_name': 'x.jpg', 'meta': meta}])
        assert 'event: error' in res and 'leaf-top' not in res and 'data:image' not in res, res[:500]
