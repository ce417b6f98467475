"""`omrw catalog`: the static site opened in real headless Chromium.

Chromium is driven over the DevTools protocol on `--remote-debugging-pipe` (fds 3 and 4), so
the test needs no Python dependency beyond the standard library. Skipped only when
/usr/bin/chromium is missing and we are not root (CI installs it with .ci/install-chromium.sh).
Screenshots are saved under tmp_path and copied to $OMR_TEST_ARTEFACTS when set.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import select
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, make_artifacts, run_omrw

CHROMIUM = "/usr/bin/chromium"
XSS_SCRIPT = "<script>window.__pwned=1</script>"
XSS_IMG = '"><img src=x onerror=window.__pwned=2>'


def _ensure_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.geteuid() != 0:
        pytest.skip("chromium is not installed (/usr/bin/chromium) and we are not root")
    script = REPO / ".ci" / "install-chromium.sh"
    subprocess.run(["bash", str(script)], check=True, timeout=900)
    if not os.path.exists(CHROMIUM):
        pytest.fail(".ci/install-chromium.sh did not install /usr/bin/chromium")


class Chrome:
    """A minimal DevTools-protocol client over Chromium's debugging pipe."""

    def __init__(self, profile: Path, log: Path):
        to_chrome_r, to_chrome_w = os.pipe()
        from_chrome_r, from_chrome_w = os.pipe()
        # Keep the child's ends far from 3/4 so the dup2s below cannot clobber each other.
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 100)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 100)
        for fd in (to_chrome_r, from_chrome_w):
            os.close(fd)

        def setup():
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        self.log = open(log, "wb")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", "--allow-file-access-from-files", "--window-size=1280,900",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, preexec_fn=setup, pass_fds=(3, 4),
            close_fds=True)
        os.close(child_r)
        os.close(child_w)
        self.wfd, self.rfd = to_chrome_w, from_chrome_r
        self.buf = b""
        self.next_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)
        self.call("Runtime.enable", session=True)

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.rfd], [], [], left)[0]:
                raise TimeoutError("no answer from chromium")
            chunk = os.read(self.rfd, 1 << 20)
            if not chunk:
                raise EOFError("chromium closed the pipe")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool = False, timeout: float = 30, **params):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read(timeout)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def eval(self, expression: str):
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def goto(self, url: str) -> None:
        self.call("Page.navigate", session=True, url=url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.eval("document.readyState") == "complete" and self.eval("location.href") == url:
                time.sleep(0.2)  # let error handlers of broken images run, if any were ever created
                return
            time.sleep(0.05)
        raise TimeoutError(f"page {url} did not load")

    def type_into(self, selector: str, text: str) -> None:
        self.eval(f"document.querySelector({json.dumps(selector)}).focus()")
        for ch in text:
            self.call("Input.dispatchKeyEvent", session=True, type="keyDown", text=ch, key=ch, unmodifiedText=ch)
            self.call("Input.dispatchKeyEvent", session=True, type="keyUp", key=ch)

    def screenshot(self, path: Path) -> Path:
        data = self.call("Page.captureScreenshot", session=True, format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        artefacts = os.environ.get("OMR_TEST_ARTEFACTS")
        if artefacts:
            Path(artefacts).mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, Path(artefacts) / path.name)
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.wfd, self.rfd):
            try:
                os.close(fd)
            except OSError:
                pass
        self.log.close()


@pytest.fixture
def chrome(tmp_path):
    _ensure_chromium()
    c = Chrome(tmp_path / "profile", tmp_path / "chromium.log")
    yield c
    c.close()


def _register(tmp_path, model, version, meta, params=(), files=None, card=None, env=None):
    art = tmp_path / f"art-{model.replace('/', '-')}-{version}"
    files = dict(files or {"model.pt": f"{model}{version}".encode() * 20})
    if card is not None:
        files["model_card.md"] = card.encode()
    make_artifacts(art, files)
    mf = tmp_path / f"meta-{model.replace('/', '-')}-{version}.json"
    mf.write_text(json.dumps(meta))
    args = ["register", model, "--version", version, "--artifacts", str(art), "--metadata", str(mf), "--no-provenance"]
    for p in params:
        args += ["--param", p]
    run_omrw(*args, env=env, check=True)


@pytest.fixture
def site(tmp_path, local_registry):
    env = {"OMR_REGISTRY": local_registry}
    card = ("# Hostile card\n\nThis card says " + XSS_SCRIPT + " and " + XSS_IMG + ".\n\n"
            "- item one\n- item `two`\n\n```\ncode </pre><script>window.__pwned=3</script>\n```\n")
    for i, auc in enumerate((0.81, 0.88, 0.93), start=1):
        _register(tmp_path, "ct/pbmc", f"v{i}",
                  {"framework": "pytorch", "description": "PBMC classifier " + XSS_IMG,
                   "notes": XSS_SCRIPT + "</script><!--", "metrics": {"auc": auc, "loss": 1 - auc}},
                  params=[f"lr=0.0{i}", f"comment={XSS_IMG}"], card=card if i == 3 else None, env=env)
    run_omrw("promote", "ct/pbmc@v2", "--to", "staging", "--reason", "looks good " + XSS_SCRIPT, env=env, check=True)
    run_omrw("promote", "ct/pbmc@v3", "--to", "production", "--reason", "best auc", "--actor", XSS_IMG, env=env,
             check=True)
    _register(tmp_path, "ct/lung", "v1", {"framework": "sklearn", "description": "Lung atlas model"},
              files={"model.pkl": b"lung" * 10, "metrics.json": b'{"auc": 0.7}'}, env=env)
    _register(tmp_path, "seg/nuclei", "v1", {"framework": "tensorflow", "description": "Nuclei segmentation"},
              env=env)
    out = tmp_path / "site"
    p = run_omrw("catalog", "-o", str(out), "--json", env=env, check=True)
    assert p.json["models"] == 3 and p.json["pages"] == 4
    return out, env


def _no_external_urls(text: str) -> None:
    """Nothing is fetched from anywhere: links are relative, no src/url()/@import at all."""
    for m in re.finditer(r"""(?:src|href|action|poster|data)\s*=\s*["']?([^"' >]*)""", text):
        value = m.group(1)
        assert ":" not in value and not value.startswith("//"), value
    assert "url(" not in text and "@import" not in text


def test_index_lists_models_and_filters_as_you_type(chrome, site, tmp_path):
    out, _env = site
    html_text = (out / "index.html").read_text()
    _no_external_urls(html_text)
    assert "Content-Security-Policy" in html_text
    chrome.goto((out / "index.html").as_uri())
    names = chrome.eval("Array.from(document.querySelectorAll('#models tbody tr')).map(r => r.dataset.model)")
    assert names == ["ct/lung", "ct/pbmc", "seg/nuclei"]
    visible = "Array.from(document.querySelectorAll('#models tbody tr')).filter(r => !r.hidden).map(r => r.dataset.model)"
    assert chrome.eval(visible) == names
    assert chrome.eval("document.getElementById('count').textContent") == "3 of 3 models"  # the script ran under CSP
    chrome.screenshot(tmp_path / "catalog-index.png")
    chrome.type_into("#q", "atlas")
    assert chrome.eval("document.getElementById('q').value") == "atlas"
    assert chrome.eval(visible) == ["ct/lung"]
    chrome.screenshot(tmp_path / "catalog-index-filtered.png")
    chrome.eval("document.getElementById('q').value=''; document.getElementById('q').dispatchEvent(new Event('input'))")
    chrome.type_into("#q", "hostile")  # the model card's text is searchable too
    assert chrome.eval(visible) == ["ct/pbmc"]
    chrome.eval("document.getElementById('q').value=''; document.getElementById('q').dispatchEvent(new Event('input'))")
    chrome.eval("var s=document.getElementById('stage'); s.value='production'; s.dispatchEvent(new Event('change'))")
    assert chrome.eval(visible) == ["ct/pbmc"]
    assert chrome.eval("typeof window.__pwned") == "undefined"
    assert (tmp_path / "catalog-index.png").stat().st_size > 1000


def test_model_page_timeline_chart_card_and_snippets(chrome, site, tmp_path):
    out, _env = site
    page = out / "models" / "ct" / "pbmc.html"
    text = page.read_text()
    _no_external_urls(text)
    chrome.goto(page.as_uri())
    kinds = chrome.eval("Array.from(document.querySelectorAll('#timeline li')).map(li => li.className)")
    assert len(kinds) == 5 and sum("move" in k for k in kinds) == 5  # 3 registers (latest) + 2 promotions
    assert chrome.eval("document.querySelectorAll('#timeline li.kind-promote').length") == 2
    charts = chrome.eval("Array.from(document.querySelectorAll('svg.metric-chart')).map(s => "
                         "[s.dataset.metric, s.querySelectorAll('polyline, path').length, "
                         "s.querySelectorAll('circle').length])")
    assert ["auc", 1, 3] in charts and ["loss", 1, 3] in charts
    versions = chrome.eval("Array.from(document.querySelectorAll('table.versions tbody tr')).map(r => r.dataset.version)")
    assert versions == ["v3", "v2", "v1"]
    snippets = chrome.eval("document.getElementById('snippet-snakemake').textContent + '\\n' + "
                           "document.getElementById('snippet-nextflow').textContent + '\\n' + "
                           "document.getElementById('snippet-config').textContent")
    assert 'storage.omr("omr://ct/pbmc@production#model.pt")' in snippets
    assert "OMR_RESOLVE" in snippets and "'ct/pbmc@production'" in snippets and "pbmc: ct/pbmc@production" in snippets
    assert chrome.eval("document.querySelector('#model-card h3').textContent") == "Hostile card"
    assert chrome.eval("document.querySelectorAll('#model-card li').length") == 2
    chrome.screenshot(tmp_path / "catalog-model.png")
    # hostile strings are shown as text, and nothing ran
    body = chrome.eval("document.body.innerText")
    assert XSS_SCRIPT in body and XSS_IMG.strip() in body and "window.__pwned=3" in body
    assert chrome.eval("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert chrome.eval("document.querySelectorAll('script').length") == 0
    chrome.eval("document.querySelectorAll('details').forEach(d => d.open = true)")
    body = chrome.eval("document.body.innerText")
    assert XSS_SCRIPT + "</script><!--" in body
    assert chrome.eval("typeof window.__pwned") == "undefined"


def test_rebuild_without_changes_rewrites_nothing(site):
    out, env = site
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in files}
    time.sleep(0.05)
    p = run_omrw("catalog", "-o", str(out), "--json", env=env, check=True)
    assert p.json["written"] == [] and p.json["unchanged"] == 4
    after = {p: (p.stat().st_mtime_ns, p.stat().st_ino) for p in sorted(q for q in out.rglob("*") if q.is_file())}
    assert after == before
    # a change rewrites exactly the pages it touches
    run_omrw("promote", "ct/lung@v1", "--to", "staging", env=env, check=True)
    p = run_omrw("catalog", "-o", str(out), "--json", env=env, check=True)
    assert sorted(p.json["written"]) == ["index.html", "models/ct/lung.html"]


def test_embedded_json_cannot_break_out(site):
    out, _env = site
    text = (out / "index.html").read_text()
    data_block = text.split('<script type="application/json" id="omr-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data_block and ">" not in data_block
    assert json.loads(data_block.replace("\\u003c", "<"))  # still valid JSON
    assert text.count("<script") == 2  # the data block and our own script, nothing from the registry
    for page in (out / "models").rglob("*.html"):
        t = page.read_text()
        assert "<script" not in t and "<img" not in t and "script-src &#x27;none&#x27;" in t
