"""Render the catalog site from the index entries (`index.load_models`).

Safety: every value read from the registry goes through `esc` (html.escape with quotes) before
it reaches the page, attribute values included; JSON embedded in a `<script>` data block has
`<`, `>`, `&` and U+2028/2029 written as `\\uXXXX`, so `</script>` or `<!--` in metadata
cannot end the block. The model card is rendered by `markdown_html`: headings, paragraphs,
lists, fenced code and inline code/bold only, every piece of text escaped, no links, no raw
HTML. Each page carries a CSP meta tag: `default-src 'none'`, and style/script only by the
sha256 of the exact inline blocks emitted here.

Writes: each file is compared with what is on disk and written only when different, through
a temp file in the same folder and `os.replace` (so an unchanged rebuild keeps every mtime).
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import math
import os
import re
from pathlib import Path
from typing import Any

CSS = """
:root{--fg:#1d2430;--mut:#5c6878;--bd:#d9dee5;--acc:#2a62c9;--bg:#fff;--soft:#f4f6f9}
*{box-sizing:border-box}body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);
background:var(--bg);margin:0;padding:0 24px 48px}header{padding:18px 0;border-bottom:1px solid var(--bd);margin-bottom:16px}
h1{font-size:22px;margin:0}h2{font-size:17px;margin:28px 0 8px}h3{font-size:15px}a{color:var(--acc);text-decoration:none}
a:hover{text-decoration:underline}table{border-collapse:collapse;width:100%;margin:8px 0}th,td{border-bottom:1px solid var(--bd);
padding:5px 8px;text-align:left;vertical-align:top}th{background:var(--soft);font-weight:600}code,pre{font:12.5px ui-monospace,
SFMono-Regular,Menlo,Consolas,monospace}pre{background:var(--soft);padding:10px;overflow:auto;border:1px solid var(--bd);
border-radius:4px;white-space:pre-wrap}.badge{display:inline-block;padding:0 7px;border-radius:9px;font-size:12px;
background:var(--soft);border:1px solid var(--bd);margin:1px 2px}.st-production{background:#e3f5e8;border-color:#8fcf9f}
.st-staging{background:#fff4d6;border-color:#e5c56a}.st-archived{background:#eee;color:#777}.mut{color:var(--mut)}
.filters{display:flex;gap:10px;align-items:center;margin:8px 0}.filters input{padding:6px 8px;width:360px;border:1px solid var(--bd);
border-radius:4px}.filters select{padding:5px}ol.timeline{list-style:none;padding-left:0;border-left:3px solid var(--bd);margin-left:8px}
ol.timeline li{position:relative;padding:4px 0 8px 16px}ol.timeline li:before{content:"";position:absolute;left:-8px;top:9px;
width:11px;height:11px;border-radius:50%;background:var(--bd)}ol.timeline li.move:before{background:var(--acc)}
.charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid var(--bd);border-radius:4px;padding:6px}
.card{border:1px solid var(--bd);border-radius:4px;padding:4px 16px}.kv td:first-child{width:28%;color:var(--mut)}
details{margin:4px 0}summary{cursor:pointer}
"""

INDEX_JS = """
(function(){
var d=JSON.parse(document.getElementById('omr-data').textContent);
var rows=document.querySelectorAll('#models tbody tr');
var q=document.getElementById('q'),s=document.getElementById('stage'),c=document.getElementById('count');
function f(){
var t=q.value.toLowerCase().split(/\\s+/).filter(Boolean),st=s.value,n=0;
for(var i=0;i<rows.length;i++){var m=d[i],ok=(!st||m.s.indexOf(st)>=0);
for(var j=0;ok&&j<t.length;j++){if(m.t.indexOf(t[j])<0){ok=false;}}
rows[i].hidden=!ok;if(ok){n++;}}
c.textContent=n+' of '+rows.length+' models';}
q.addEventListener('input',f);s.addEventListener('change',f);f();
})();
"""

STAGES = ("development", "staging", "production", "archived")
MAX_MODEL_TEXT = 2000


def esc(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str) if isinstance(value, (dict, list)) \
            else str(value)
    return html.escape(value, quote=True)


def script_json(obj: Any) -> str:
    """JSON safe inside a <script> data block: nothing in it can close the element or open a comment."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def _page(title: str, body: str, script: str | None = None) -> bytes:
    csp = f"default-src 'none'; style-src {_csp_hash(CSS)}; img-src 'none'; base-uri 'none'; form-action 'none'; "
    csp += f"script-src {_csp_hash(script)}" if script else "script-src 'none'"
    out = ["<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<meta http-equiv=\"Content-Security-Policy\" content=\"{esc(csp)}\">",
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
           "<meta name=\"referrer\" content=\"no-referrer\">",
           f"<title>{esc(title)}</title><style>{CSS}</style></head><body>", body]
    if script:
        out.append(f"<script>{script}</script>")
    out.append("</body></html>\n")
    return "".join(out).encode("utf-8", "replace")


# ---------------------------------------------------------------------- markdown subset
_INLINE_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")


def _inline(text: str) -> str:
    s = html.escape(text, quote=True)
    s = _INLINE_CODE.sub(lambda m: f"<code>{m.group(1)}</code>", s)
    return _BOLD.sub(lambda m: f"<strong>{m.group(1)}</strong>", s)


def markdown_html(text: str) -> str:
    """A tiny safe Markdown subset; the input is escaped piece by piece, never trusted as HTML."""
    out: list[str] = []
    para: list[str] = []
    lst: tuple[str, list[str]] | None = None
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0

    def flush():
        nonlocal lst
        if para:
            out.append("<p>" + _inline(" ".join(para)) + "</p>")
            para.clear()
        if lst is not None:
            out.append(f"<{lst[0]}>" + "".join(f"<li>{_inline(x)}</li>" for x in lst[1]) + f"</{lst[0]}>")
            lst = None

    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            out.append("<pre><code>" + html.escape("\n".join(code), quote=True) + "</code></pre>")
            i += 1
            continue
        m = re.match(r"(#{1,6})\s+(.*)", stripped)
        if m:
            flush()
            level = min(6, len(m.group(1)) + 2)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
        elif re.match(r"[-*+]\s+", stripped):
            if para or (lst is not None and lst[0] != "ul"):
                flush()
            lst = lst or ("ul", [])
            lst[1].append(re.sub(r"^[-*+]\s+", "", stripped))
        elif re.match(r"\d+[.)]\s+", stripped):
            if para or (lst is not None and lst[0] != "ol"):
                flush()
            lst = lst or ("ol", [])
            lst[1].append(re.sub(r"^\d+[.)]\s+", "", stripped))
        elif not stripped:
            flush()
        else:
            if lst is not None:
                flush()
            para.append(stripped)
        i += 1
    flush()
    return "\n".join(out)


# ---------------------------------------------------------------------- charts
def _fmt(v: float) -> str:
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    return f"{v:.4g}"


def metric_chart(metric: str, points: list[tuple[str, float]]) -> str:
    """An inline SVG line chart: versions (registration order) on x, the metric on y."""
    w, h, left, right, top, bottom = 380, 170, 52, 14, 22, 40
    ys = [p[1] for p in points]
    lo, hi = min(ys), max(ys)
    if lo == hi:
        lo, hi = lo - (abs(lo) * 0.05 or 0.5), hi + (abs(hi) * 0.05 or 0.5)
    n = len(points)

    def x(i):
        return left + (w - left - right) * (0.5 if n == 1 else i / (n - 1))

    def y(v):
        return top + (h - top - bottom) * (1 - (v - lo) / (hi - lo))

    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    parts = [f'<svg class="metric-chart" data-metric="{esc(metric)}" xmlns="http://www.w3.org/2000/svg" width="{w}" '
             f'height="{h}" viewBox="0 0 {w} {h}" role="img" aria-label="{esc(metric)} by version">',
             f'<text x="{left}" y="14" font-size="12" font-weight="600" fill="#1d2430">{esc(metric)}</text>',
             f'<line x1="{left}" y1="{h - bottom}" x2="{w - right}" y2="{h - bottom}" stroke="#bbb"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#bbb"/>',
             f'<text x="{left - 4}" y="{top + 4}" font-size="10" text-anchor="end" fill="#5c6878">{esc(_fmt(hi))}</text>',
             f'<text x="{left - 4}" y="{h - bottom}" font-size="10" text-anchor="end" fill="#5c6878">{esc(_fmt(lo))}</text>',
             f'<polyline fill="none" stroke="#2a62c9" stroke-width="2" points="{coords}"/>']
    step = max(1, math.ceil(n / 8))
    for i, (label, v) in enumerate(points):
        parts.append(f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3.5" fill="#2a62c9"><title>{esc(label)}: '
                     f'{esc(_fmt(v))}</title></circle>')
        if i % step == 0 or i == n - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{h - bottom + 14}" font-size="10" text-anchor="middle" '
                         f'fill="#5c6878">{esc(label[:14])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _numeric(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


# ---------------------------------------------------------------------- pages
def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""  # pragma: no cover


def _badge(stage: str) -> str:
    return f'<span class="badge st-{esc(stage)}">{esc(stage)}</span>'


def _default_selector(entry: dict) -> str:
    aliases = entry.get("aliases") or {}
    if "production" in aliases:
        return "production"
    if "latest" in aliases:
        return "latest"
    return entry["versions"][-1]["version"] if entry["versions"] else "latest"


def model_page_path(task: str, model: str) -> str:
    return f"models/{task}/{model}.html"


def _kv_table(d: dict) -> str:
    if not d:
        return '<p class="mut">none</p>'
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in sorted(d.items(), key=lambda kv: str(kv[0])))
    return f'<table class="kv">{rows}</table>'


def _event_line(e: dict) -> tuple[str, bool]:
    kind = e.get("kind") or ""
    alias = e.get("alias")
    moves = e.get("stage_moves") or {}
    moving = bool(alias) or bool(moves)
    bits = [f'<span class="mut">{esc(e.get("ts_utc"))}</span>', f"<strong>{esc(kind)}</strong>",
            f"<code>{esc(e.get('version'))}</code>"]
    if alias:
        frm = e.get("from_version")
        bits.append(f"&rarr; <span class=\"badge\">{esc(alias)}</span>" +
                    (f' <span class="mut">(was {esc(frm)})</span>' if frm else ""))
    if moves:
        bits.append("stages: " + ", ".join(f"{esc(v)} &rarr; {esc(s)}" for v, s in sorted(moves.items())))
    if e.get("rollback"):
        bits.append('<span class="badge">rollback</span>')
    bits.append(f"by {esc(e.get('actor'))}")
    if e.get("reason"):
        bits.append(f"&mdash; {esc(e.get('reason'))}")
    if e.get("signed_by"):
        bits.append(f'<span class="mut">signed by {esc(e.get("signed_by"))}</span>')
    if e.get("request"):
        bits.append(f'<span class="mut">request #{esc(e.get("request"))}</span>')
    if e.get("approvals"):
        bits.append(f'<span class="mut">approvals #{esc(", #".join(str(a) for a in e["approvals"]))}</span>')
    return f'<li class="ev kind-{esc(kind)}{" move" if moving else ""}" data-seq="{esc(e.get("seq"))}">' + \
        " ".join(bits) + "</li>", moving


def render_model(entry: dict) -> bytes:
    task, model = entry["task"], entry["model"]
    name = f"{task}/{model}"
    versions = entry["versions"]
    sel = _default_selector(entry)
    target = next((r for r in versions if r["version"] == (entry.get("aliases") or {}).get(sel, sel)),
                  versions[-1] if versions else None)
    out = [f'<header><a href="../../index.html">&larr; all models</a><h1>{esc(name)}</h1>']
    if target and target.get("description"):
        out.append(f"<p>{esc(target['description'])}</p>")
    out.append("</header>")
    if entry.get("error"):
        out.append(f'<p class="mut">could not read this model: {esc(entry["error"])}</p>')
    # versions
    out.append('<h2 id="versions">Versions</h2><table class="versions"><thead><tr><th>version</th><th>stage</th>'
               '<th>aliases</th><th>digest</th><th>size</th><th>created</th><th>registered by</th>'
               '<th>signatures</th><th>approvals</th></tr></thead><tbody>')
    for r in reversed(versions):
        out.append(
            f'<tr data-version="{esc(r["version"])}"><td><code>{esc(r["version"])}</code></td><td>{_badge(r["stage"])}</td>'
            f'<td>{" ".join(f"<span class=badge>{esc(a)}</span>" for a in r.get("aliases", []))}</td>'
            f'<td><code title="{esc(r["digest"])}">{esc((r.get("digest") or "")[:19])}</code></td>'
            f'<td>{esc(_size(r.get("size")))}</td><td>{esc(r.get("created_at"))}</td><td>{esc(r.get("created_by"))}</td>'
            f'<td>{"<br>".join(esc(s) for s in r.get("signed_by", []))}</td>'
            f'<td>{"<br>".join(esc(s) for s in r.get("approved_by", []))}</td></tr>')
    out.append("</tbody></table>")
    # timeline
    out.append('<h2 id="promotions">Promotion timeline</h2><ol class="timeline" id="timeline">')
    for e in entry.get("timeline", []):
        line, _moving = _event_line(e)
        out.append(line)
    out.append("</ol>")
    # metrics
    metrics: dict[str, list[tuple[str, float]]] = {}
    for r in versions:
        for k, v in (r.get("metrics") or {}).items():
            n = _numeric(v)
            if n is not None:
                metrics.setdefault(k, []).append((r["version"], n))
    out.append('<h2 id="metrics">Metrics</h2>')
    if metrics:
        out.append('<div class="charts">' + "".join(f'<div class="chart">{metric_chart(k, pts)}</div>'
                                                    for k, pts in sorted(metrics.items())) + "</div>")
    else:
        out.append('<p class="mut">no numeric metrics recorded</p>')
    # card
    card_rec = target if target and target.get("card") else next((r for r in reversed(versions) if r.get("card")), None)
    out.append('<h2 id="card">Model card</h2>')
    if card_rec:
        out.append(f'<p class="mut">from version {esc(card_rec["version"])}</p>'
                   f'<div class="card" id="model-card">{markdown_html(card_rec["card"])}</div>')
    else:
        out.append('<p class="mut">no model_card.md</p>')
    # snippets
    ref = f"{name}@{sel}"
    file = (target or {}).get("first_file") or "model.pt"
    pinned = f"{name}@{target['digest']}" if target and target.get("digest") else None
    smk = (f'rule predict:\n    input:\n        model=storage.omr("omr://{ref}#{file}"),\n'
           f'    output: "results/predictions.tsv"\n    shell: "predict --model {{input.model}} > {{output}}"')
    cfg = f"omr:\n  models:\n    {model}: {ref}\n  verify: fast"
    nf = (f"include {{ OMR_RESOLVE }} from './omr-workflows/nextflow_modules/omr/resolve/main'\n\n"
          f"workflow {{\n    OMR_RESOLVE ( channel.of( [ [ id: '{model}' ], '{ref}' ] ) )\n}}")
    out.append('<h2 id="use">Use it</h2><h3>Snakemake storage plugin</h3>'
               f'<pre class="snippet" id="snippet-snakemake">{esc(smk)}</pre>'
               f'<h3>Snakemake rule library (config.yaml)</h3><pre class="snippet" id="snippet-config">{esc(cfg)}</pre>'
               f'<h3>Nextflow</h3><pre class="snippet" id="snippet-nextflow">{esc(nf)}</pre>'
               f'<h3>CLI</h3><pre class="snippet">omrw resolve --verify fast {esc(ref)}' +
               (f"\n# pinned: {esc(pinned)}" if pinned else "") + "</pre>")
    # per-version details
    out.append('<h2 id="details">Metadata and parameters</h2>')
    for r in reversed(versions):
        meta = {k: v for k, v in (r.get("meta") or {}).items()}
        out.append(f'<details><summary><code>{esc(r["version"])}</code></summary><h3>metrics</h3>'
                   f'{_kv_table(r.get("metrics") or {})}<h3>params</h3>{_kv_table(r.get("params") or {})}'
                   f'<h3>metadata</h3>{_kv_table(meta)}</details>')
    return _page(f"{name} - omr catalog", "".join(out))


def _model_text(entry: dict) -> str:
    """What the index page's filter box searches: the distinct words of the model's versions
    (newest first: names, stage, aliases, metadata and params values, model card), bounded."""
    seen: dict[str, None] = {f"{entry['task']}/{entry['model']}": None}
    size = 0
    for r in reversed(entry["versions"]):
        for w in r.get("text", "").split():
            if w not in seen:
                seen[w] = None
                size += len(w) + 1
                if size > MAX_MODEL_TEXT:
                    return " ".join(seen)[:MAX_MODEL_TEXT]
    return " ".join(seen)


def index_row(e: dict) -> tuple[str, dict]:
    """One model's row of the index page: (its <tr>, its item in the filter's JSON data)."""
    vs = e["versions"]
    stages = sorted({r["stage"] for r in vs}, key=lambda s: STAGES.index(s) if s in STAGES else 9)
    aliases = e.get("aliases") or {}
    desc = next((r.get("description") for r in reversed(vs) if r.get("description")), None)
    updated = max((t.get("ts_utc") or "" for t in e.get("timeline", [])), default="")
    name = f"{e['task']}/{e['model']}"
    tr = (f'<tr data-model="{esc(name)}"><td><a href="{esc(model_page_path(e["task"], e["model"]))}">{esc(name)}</a></td>'
          f'<td>{esc(desc)}</td><td>{len(vs)}</td><td>{"".join(_badge(s) for s in stages)}</td>'
          f'<td><code>{esc(aliases.get("production"))}</code></td><td><code>{esc(aliases.get("latest"))}</code></td>'
          f'<td class="mut">{esc(updated[:19])}</td></tr>')
    return tr, {"n": name, "s": stages, "t": _model_text(e)}


def render_index(rows: list[tuple[str, dict]], registry: str) -> bytes:
    body = ('<header><h1>Model catalog</h1>'
            f'<p class="mut">registry <code>{esc(registry)}</code></p></header>'
            '<div class="filters"><input id="q" type="search" placeholder="filter: name, metadata, model card..." '
            'autocomplete="off" aria-label="filter models"><select id="stage" aria-label="stage">'
            '<option value="">any stage</option>' + "".join(f'<option value="{s}">{s}</option>' for s in STAGES) +
            f'</select><span id="count" class="mut">{len(rows)} models</span></div>'
            '<table id="models"><thead><tr><th>model</th><th>description</th><th>versions</th><th>stages</th>'
            '<th>production</th><th>latest</th><th>updated</th></tr></thead><tbody>' + "".join(tr for tr, _ in rows) +
            '</tbody></table>'
            f'<script type="application/json" id="omr-data">{script_json([d for _, d in rows])}</script>')
    return _page("omr model catalog", body, INDEX_JS)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write `data` at `path` unless it already holds exactly that (temp file + os.replace)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        pass
    else:
        with os.fdopen(fd, "rb") as f:
            try:
                if f.read(len(data) + 1) == data:
                    return False
            except OSError:
                pass
    from ..lockfile import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data, fsync=False)
    return True


BUILDER_VERSION = "1"
STATE_NAME = ".omr-catalog.json"


def _fingerprint(name: str, key: list | None, registry: str) -> str | None:
    """What a model's page and index row are a function of: the model's head (its log up to there;
    versions are immutable) and this builder. None (always render) for a model without a usable head."""
    if not key:
        return None
    return hashlib.sha256(json.dumps([BUILDER_VERSION, registry, name, key]).encode()).hexdigest()


def _load_state(root: Path, registry: str) -> dict:
    try:
        with open(root / STATE_NAME, "rb") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(data, dict) or data.get("builder") != BUILDER_VERSION or data.get("registry") != registry:
        return {}
    return data


def _same_file(path: Path, rec: Any) -> bool:
    if not isinstance(rec, dict):
        return False
    try:
        st = os.lstat(path)
    except OSError:
        return False
    import stat as _stat

    return _stat.S_ISREG(st.st_mode) and st.st_size == rec.get("size") and st.st_mtime_ns == rec.get("mtime_ns")


def build_catalog(reg, outdir: str | os.PathLike, task: str | None = None, stats: dict | None = None) -> dict:
    """Write the site of `reg` (a Registry); returns {"pages", "written": [relative paths], "unchanged", "models"}.

    `DIR/.omr-catalog.json` records, per model, the fingerprint (`_fingerprint`) its page and
    index row were made from, the row itself and the page file's size and mtime. A model whose
    head still gives that fingerprint and whose page file is untouched is neither read from the
    index nor rendered; every other page is rendered and written only when its bytes differ from
    the file on disk. The index page is assembled from the rows and compared the same way.
    """
    from .index import load_models, scan

    registry = reg.url
    root = Path(outdir)
    root.mkdir(parents=True, exist_ok=True)
    old = _load_state(root, registry)
    old_pages = old.get("pages") if isinstance(old.get("pages"), dict) else {}
    old_rows = old.get("rows") if isinstance(old.get("rows"), dict) else {}
    scanned = scan(reg, task)
    fps = {name: _fingerprint(name, key, registry) for name, _t, _m, key in scanned}
    need = set()
    for name, t, m, _key in scanned:
        rel = model_page_path(t, m)
        rec, row = old_pages.get(rel), old_rows.get(name)
        if not (fps[name] and isinstance(rec, dict) and rec.get("fp") == fps[name] and isinstance(row, dict)
                and row.get("fp") == fps[name] and isinstance(row.get("tr"), str) and isinstance(row.get("d"), dict)
                and _same_file(root / rel, rec)):
            need.add(name)
    entries = {e["task"] + "/" + e["model"]: e
               for e in (load_models(reg, task, stats=stats, names=need, scanned=scanned) if need else [])}
    pages: dict = {}
    rows: dict = {}
    written, unchanged = [], 0

    def put(rel: str, data: bytes, fp: str | None) -> None:
        nonlocal unchanged
        path = root / rel
        if write_if_changed(path, data):
            written.append(rel)
        else:
            unchanged += 1
        st = os.lstat(path)
        pages[rel] = {"fp": fp, "size": st.st_size, "mtime_ns": st.st_mtime_ns}

    for name, t, m, _key in scanned:
        rel = model_page_path(t, m)
        e = entries.get(name)
        if e is None:  # unchanged: keep what the last build recorded
            pages[rel], rows[name] = old_pages[rel], old_rows[name]
            unchanged += 1
            continue
        fp = _fingerprint(name, e.get("key"), registry) if not e.get("error") else None
        put(rel, render_model(e), fp)
        tr, d = index_row(e)
        rows[name] = {"fp": fp, "tr": tr, "d": d}
    put("index.html", render_index([(rows[n]["tr"], rows[n]["d"]) for n, *_ in scanned], registry), None)
    state_bytes = (json.dumps({"builder": BUILDER_VERSION, "registry": registry, "pages": pages, "rows": rows},
                              sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n").encode()
    write_if_changed(root / STATE_NAME, state_bytes)
    return {"outdir": str(root), "pages": len(scanned) + 1, "written": written, "unchanged": unchanged,
            "models": len(scanned), "rendered": len(entries)}
