"""Register-time provenance: what produced a model, stored under `provenance` in model_meta.json.

`Provenance` is the one definition of that record: the git state of the training code
(commit, dirty flag, remote URL with credentials removed), dataset references, the
hyperparameter file, creator and time, the software environment (envinfo.py, with its own
digest) and optional code/data dependency digests (codehash.py, combined into one
composite digest with domain separation).

None of it enters the package digest: model_meta.json is a sidecar of the manifest, so the
same bytes registered twice from different machines, commits or environments get the same
package digest and satisfy the same locks.

Git "dirty" means tracked files differ from the commit (staged or not); untracked files are
counted in `untracked` but do not make the tree dirty.
"""

from __future__ import annotations

import os
import re
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .envinfo import Environment
from .errors import InvalidInputError

SCHEMA_ID = "omr-provenance/1"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
_OTHER_DIGEST_RE = re.compile(r"@(md5|sha1|sha224|sha384|sha512|blake2b|blake3|xxh3|xxh128|crc32c):[0-9A-Fa-f]+$",
                              re.I)
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class GitInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    commit: str | None = Field(description="HEAD commit; None in a repository without commits")
    dirty: bool = Field(description="tracked files differ from the commit")
    untracked: int = Field(default=0, description="untracked files (not counted as dirty)")
    branch: str | None = None
    remote: str | None = Field(default=None, description="URL of `origin` (or the first remote), credentials removed")
    root: str = Field(description="top-level folder of the repository")


class DatasetRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ref: str = Field(description="as given to --dataset")
    kind: Literal["uri", "dvc", "registry", "path"]
    uri: str = Field(description="the reference without its @sha256 suffix")
    digest: str | None = Field(default=None, description="sha256:<hex> given with the reference")
    dvc: dict[str, Any] | None = Field(default=None, description="md5/size/path of the first out of a .dvc file")


class FileDigest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str


class Dependency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["code", "data"]
    path: str = Field(description="as given; not part of the digest")
    shape: Literal["file", "tree"]
    digest: str
    files: int
    bytes: int
    pyast_files: int = Field(default=0, description="Python files hashed by normalised syntax tree")
    unparsable: list[str] = Field(default_factory=list, description=".py files hashed as bytes (syntax error)")


class Dependencies(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheme: str = Field(default="omr-deps-v1", description="see codehash.py")
    items: list[Dependency]
    digest: str = Field(description="composite digest over every item (order independent, kinds separated)")


class Provenance(BaseModel):
    """`model_meta.json` -> `provenance`."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["omr-provenance/1"] = Field(default=SCHEMA_ID, alias="schema")
    captured_at: str
    creator: str
    code_dir: str
    git: GitInfo | None = None
    datasets: list[DatasetRef] = Field(default_factory=list)
    params_file: FileDigest | None = None
    environment: Environment | None = None
    dependencies: Dependencies | None = None


# ------------------------------------------------------------------ params
def load_params(path: str) -> dict[str, Any]:
    """Hyperparameters from a JSON (`.json`) or YAML file holding a mapping, bounded (see bounds.py).

    The one reader of `--params` files: the CLI, and the provenance it captures, both use it.
    """
    from .bounds import MAX_DEPTH, load_json_bounded, load_yaml_bounded, read_bounded

    # One level below the limit: the params are stored one level deep inside model_meta.json.
    depth = MAX_DEPTH - 1
    data = read_bounded(path, "--params")
    what = f"--params file {path!r}"
    if path.lower().endswith(".json"):
        value = load_json_bounded(data, what, max_depth=depth)
    else:
        value = load_yaml_bounded(data, what, max_depth=depth)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f"{what} must hold a mapping of names to values", obj=path)
    return value


# ------------------------------------------------------------------ git
def _git(code_dir: str, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", code_dir, *args], capture_output=True, text=True, timeout=30,
                             env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def redact_url(url: str) -> str:
    """Remove credentials from a remote URL: all user info for http(s) (tokens are often put in
    the user part), the password part for other schemes (`ssh://git@host` keeps its user)."""
    url = url.strip()
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@]*)@(.*)$", url)
    if not m:
        return url
    scheme, userinfo, rest = m.groups()
    if scheme.lower() in ("http://", "https://"):
        return scheme + rest
    user = userinfo.split(":", 1)[0]
    return f"{scheme}{user}@{rest}" if user else scheme + rest


def git_info(code_dir: str) -> GitInfo | None:
    """The git state of the repository holding `code_dir`, or None when it is not in one."""
    root = _git(code_dir, "rev-parse", "--show-toplevel")
    if root is None:
        return None
    status = _git(code_dir, "status", "--porcelain=v2", "--branch") or ""
    commit = branch = None
    dirty = False
    untracked = 0
    for line in status.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[2]
            commit = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(None, 2)[2]
            branch = None if head == "(detached)" else head
        elif line.startswith("?"):
            untracked += 1
        elif line[:1] in ("1", "2", "u"):
            dirty = True
    remote = _git(code_dir, "remote", "get-url", "origin")
    if remote is None:
        names = (_git(code_dir, "remote") or "").split()
        remote = _git(code_dir, "remote", "get-url", names[0]) if names else None
    return GitInfo(commit=commit, dirty=dirty, untracked=untracked, branch=branch,
                   remote=redact_url(remote) if remote and remote.strip() else None, root=root.strip())


# ------------------------------------------------------------------ datasets
def _dvc_out(path: Path) -> dict[str, Any] | None:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    outs = data.get("outs") if isinstance(data, dict) else None
    if not outs or not isinstance(outs[0], dict):
        return None
    first = outs[0]
    return {k: first[k] for k in ("md5", "size", "nfiles", "path", "hash") if k in first}


def parse_dataset(text: str) -> DatasetRef:
    """A --dataset reference: URI, DVC path, registry ref or path, optionally `@sha256:<hex>`.

    Registry references (`omr://...`) keep their own `@selector`; a digest selector there is
    the dataset digest. Raises InvalidInputError for an empty reference or a bad digest.
    """
    raw = (text or "").strip()
    if not raw:
        raise InvalidInputError("invalid --dataset '': expected URI[@sha256:HEX], a DVC path or omr://TASK/MODEL@...")
    if raw.startswith("omr://"):
        from .refs import parse_ref

        try:
            r = parse_ref(raw)
        except InvalidInputError as e:
            raise InvalidInputError(f"invalid --dataset {raw!r}: {e}") from None
        return DatasetRef(ref=raw, kind="registry", uri=f"omr://{r}",
                          digest=r.selector if r.selector_is_digest else None)
    uri, digest = raw, None
    if "@sha256:" in raw:
        uri, _, hexd = raw.rpartition("@sha256:")
        digest = "sha256:" + hexd.lower()
        if not uri or not DIGEST_RE.fullmatch(digest):
            raise InvalidInputError(f"invalid --dataset {raw!r}: the digest must be sha256: and 64 hex digits")
    elif m := _OTHER_DIGEST_RE.search(raw):
        algo = m.group(1)
        raise InvalidInputError(f"invalid --dataset {raw!r}: unsupported digest {algo!r}, use @sha256:<hex>")
    if uri.startswith("dvc://") or uri.endswith(".dvc"):
        dvc = _dvc_out(Path(uri)) if not uri.startswith("dvc://") else None
        return DatasetRef(ref=raw, kind="dvc", uri=uri, digest=digest, dvc=dvc)
    if _SCHEME_RE.match(uri):
        return DatasetRef(ref=raw, kind="uri", uri=uri, digest=digest)
    sidecar = Path(uri + ".dvc")
    if sidecar.is_file():
        return DatasetRef(ref=raw, kind="dvc", uri=uri, digest=digest, dvc=_dvc_out(sidecar))
    return DatasetRef(ref=raw, kind="path", uri=uri, digest=digest)


# ------------------------------------------------------------------ capture
def _dependencies(code_paths, data_paths) -> Dependencies | None:
    from .codehash import composite_digest, dependency_digest

    deps = [dependency_digest(p, "code") for p in code_paths] + [dependency_digest(p, "data") for p in data_paths]
    if not deps:
        return None
    items = [Dependency(kind=d.kind, path=d.path, shape=d.shape, digest=d.digest, files=d.files, bytes=d.bytes,
                        pyast_files=d.pyast_files, unparsable=d.unparsable) for d in deps]
    return Dependencies(items=items, digest=composite_digest(deps))


def capture_model(code_dir: str | None = None, datasets: list[str] = (), code_paths: list[str] = (),
                  data_paths: list[str] = (), params_file: str | None = None, creator: str | None = None,
                  environment: bool = True) -> Provenance:
    """Capture provenance now. Raises InvalidInputError for a bad path or reference."""
    from . import envinfo
    from .constants import default_actor
    from .hashing import sha256_hex

    if code_dir is not None:
        if not os.path.exists(code_dir):
            raise InvalidInputError(f"--code-dir {code_dir!r} does not exist")
        if not os.path.isdir(code_dir):
            raise InvalidInputError(f"--code-dir {code_dir!r} is not a folder")
    code_dir = os.path.abspath(code_dir or os.getcwd())
    refs = [parse_dataset(d) for d in datasets or ()]
    params = None
    if params_file:
        try:
            params = FileDigest(path=str(params_file), sha256=sha256_hex(Path(params_file).read_bytes()))
        except OSError as e:
            raise InvalidInputError(f"params file {params_file!r} cannot be read: {e.strerror}") from None
    return Provenance(
        captured_at=datetime.now(timezone.utc).isoformat(),
        creator=creator or default_actor(),
        code_dir=code_dir,
        git=git_info(code_dir),
        datasets=refs,
        params_file=params,
        environment=envinfo.collect() if environment else None,
        dependencies=_dependencies(list(code_paths or ()), list(data_paths or ())),
    )


def capture(code_dir: str | None = None, datasets: list[str] = (), code_paths: list[str] = (),
            data_paths: list[str] = (), params_file: str | None = None, creator: str | None = None,
            environment: bool = True) -> dict[str, Any]:
    """`capture_model(...)` as the JSON-ready dict that register stores in model_meta.json."""
    prov = capture_model(code_dir=code_dir, datasets=datasets, code_paths=code_paths, data_paths=data_paths,
                         params_file=params_file, creator=creator, environment=environment)
    return prov.model_dump(mode="json", by_alias=True, exclude_none=True)


def parse_provenance(data: dict[str, Any] | None) -> Provenance | None:
    """Validate the `provenance` of a model_meta.json (None when absent). Raises InvalidInputError."""
    if data is None:
        return None
    try:
        return Provenance.model_validate(data)
    except Exception as e:
        raise InvalidInputError(f"invalid provenance record: {str(e).splitlines()[0]}") from None


def resolve_registry_datasets(prov: dict[str, Any], resolve) -> dict[str, Any]:
    """Pin each `omr://` dataset of a captured provenance dict (`capture(...)`) in place.

    `resolve(ref)` is `Registry.resolve` of the registry being registered into: the dataset's
    `uri` becomes `omr://TASK/MODEL@VERSION` and its `digest` that version's package digest,
    so an alias given at register (`@production`) is recorded as what it meant then.
    Raises what `resolve` raises (NotFoundError for a dataset that is not there).
    """
    for d in prov.get("datasets") or []:
        if d.get("kind") == "registry":
            res = resolve(d["ref"])
            d["uri"], d["digest"] = res.uri, res.digest
    return prov
