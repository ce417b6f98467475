"""`roc-validator` (PyPI, command `rocrate-validator`) run offline on our crates.

Offline, the validator serves HTTP only from its requests_cache SQLite cache (`--offline
--cache-path`), keyed by method and URL. `build_cache` fills such a cache with the JSON-LD
contexts that installed packages ship, each under the URL its own `@id` names, by letting a
requests_cache session fetch them through a transport adapter that reads the package file
(the cache then holds exactly what a GET of that URL would have stored). Today that is the
RO-Crate 1.1 context of the `rocrate` wheel (`rocrate/data/ro-crate.jsonld`; rocrate 0.16
ships the 1.3 context instead, hence `rocrate<0.16` in the test extra).

What stays unchecked offline: no package ships `https://w3id.org/ro/terms/workflow-run/context`,
so a crate referencing it (nf-prov does not; ours defines its terms inline) cannot be
expanded; data entities on the web are not fetched (availability checks, ro-crate-1.1_28.1,
are reported as "could not be verified", and `omr://` is not a scheme the validator knows).

`ALLOWED_RECOMMENDED` lists the RECOMMENDED checks our crates may still fail, each with why.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

VALIDATOR = [str(Path(sys.executable).with_name("rocrate-validator"))]
RO_CRATE_11 = "https://w3id.org/ro/crate/1.1/context"

#: check id -> why our crate may fail it (validator artefacts, or information only the user has)
ALLOWED_RECOMMENDED = {
    "ro-crate-1.1_28.1": "omr:// data entities: the validator cannot check the availability of a scheme it "
                         "does not know (and fetches nothing offline)",
    "process-run-crate-0.5_3.2": "a local workflow file without a git remote has no url (pass --workflow-url)",
    "process-run-crate-0.5_5.1": "the workflow is a file inside the crate (Workflow RO-Crate), so its @id is relative",
    "process-run-crate-0.5_11.1": "a run that only reads models has no result we know of (the workflow's own "
                                  "outputs are the engine's to list)",
    "ro-crate-1.1_22.3": "no default publisher: pass --publisher (an Organization)",
    "ro-crate-1.1_30.2": "the author's affiliation is the --publisher, when given",
    "ro-crate-1.1_30.3": "the author's affiliation is the --publisher, when given",
}


def package_contexts() -> dict[str, Path]:
    """{context URL: file} for every JSON-LD context an installed package ships."""
    out = {}
    try:
        import rocrate
    except ImportError:
        return out
    path = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"
    try:
        url = json.loads(path.read_bytes()).get("@id")
    except (OSError, ValueError):
        url = None
    if isinstance(url, str) and url.startswith("https://"):
        out[url] = path
    return out


def build_cache(cache_path: Path) -> dict[str, Path]:
    """Fill roc-validator's requests_cache at `cache_path` with the package contexts; returns them."""
    from requests.adapters import BaseAdapter, HTTPAdapter
    from requests_cache import CachedSession
    from urllib3.response import HTTPResponse

    contexts = package_contexts()
    if RO_CRATE_11 not in contexts:
        pytest.fail(f"no installed package ships {RO_CRATE_11} (found {sorted(contexts)}); the test extra pins "
                    f"rocrate<0.16, whose wheel ships it as rocrate/data/ro-crate.jsonld")

    class PackageFiles(BaseAdapter):
        def send(self, request, **kwargs):
            body = contexts[request.url].read_bytes()
            raw = HTTPResponse(body=io.BytesIO(body), status=200, preload_content=False, decode_content=False,
                               headers={"Content-Type": "application/ld+json"}, request_url=request.url)
            return HTTPAdapter().build_response(request, raw)

        def close(self):
            pass

    # The same session settings as the validator's (utils/http.py), so keys and expiry agree.
    session = CachedSession(cache_name=str(cache_path), backend="sqlite", expire_after=-1,
                            allowable_methods=("GET",), allowable_codes=(200, 302, 404))
    session.mount("https://", PackageFiles())
    for url in contexts:
        r = session.get(url)
        assert r.status_code == 200, url
    session.close()
    return contexts


def validate(crate_dir: Path, profile: str, cache_path: Path, severity: str = "recommended") -> list[dict]:
    """Issues of `crate_dir` against `profile` ([{severity, check, message}]); raises on a validator crash."""
    report = Path(crate_dir).parent / f".rocval-{Path(crate_dir).name}-{profile}.json"
    env = {**os.environ, "NO_COLOR": "1"}
    p = subprocess.run([*VALIDATOR, "validate", str(crate_dir), "-p", profile, "-l", severity, "--offline",
                        "--cache-path", str(cache_path), "-f", "json", "-o", str(report), "--no-paging"],
                       capture_output=True, text=True, env=env, timeout=300, stdin=subprocess.DEVNULL)
    if not report.exists():
        raise AssertionError(f"rocrate-validator wrote no report (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
    data = json.loads(report.read_text())
    report.unlink()
    issues = []
    for i in data.get("issues", []):
        check = i.get("check")
        issues.append({"severity": i.get("severity"),
                       "check": check.get("identifier") if isinstance(check, dict) else str(check),
                       "message": " ".join(str(i.get("message")).split())[:300]})
    return issues


def assert_valid(crate_dir: Path, profile: str, cache_path: Path, known: list[dict] = ()) -> list[dict]:
    """0 REQUIRED issues, and only RECOMMENDED issues listed in ALLOWED_RECOMMENDED or in `known`
    (an engine crate's own, before we merged into it); returns the issues."""
    issues = validate(crate_dir, profile, cache_path)
    required = [i for i in issues if i["severity"] == "REQUIRED"]
    assert not required, f"{profile} REQUIRED failures in {crate_dir}:\n" + "\n".join(map(str, required))
    had = {(i["check"], i["message"]) for i in known}
    unexpected = [i for i in issues if i["severity"] == "RECOMMENDED" and i["check"] not in ALLOWED_RECOMMENDED
                  and (i["check"], i["message"]) not in had]
    assert not unexpected, f"{profile} unexpected RECOMMENDED failures in {crate_dir}:\n" + \
        "\n".join(map(str, unexpected))
    return issues
