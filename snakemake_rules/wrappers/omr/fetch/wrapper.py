"""Put a verified local copy of a model version (or one #FILE of it) at the output path.

The reference comes from params.ref or from a resolve JSON given as input `resolved`; with
the latter the exact version it named is fetched (never whatever the alias points to now).
"""

__author__ = "omr-workflows"
__license__ = "MIT"

import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(snakemake.scriptdir))  # noqa: F821 (snakemake is injected)
from _omr_wrapper_utils import (
    WrapperError, existing_input, main, param, read_json, run_omrw, primary_output, verify_mode,
)

LINK_MODES = ("copy", "symlink")


def body(sm):
    out = primary_output(sm, "model", "the model folder or file")
    resolved = existing_input(sm, "resolved")
    ref = param(sm, "ref")
    if resolved:
        doc = read_json(resolved, "resolve document")
        if not isinstance(doc, dict) or not doc.get("uri") or not doc.get("digest"):
            raise WrapperError(f"{sm.rule}: {resolved!r} is not an `omrw resolve --json` document")
        ref = doc["uri"] + (f"#{doc['file']}" if doc.get("file") else "")
        if param(sm, "file"):
            ref = doc["uri"] + f"#{param(sm, 'file')}"
    elif not ref:
        raise WrapperError(f"{sm.rule}: give params.ref or an input `resolved` (a resolve JSON)")
    elif param(sm, "file") and "#" not in str(ref):
        ref = f"{ref}#{param(sm, 'file')}"
    link = param(sm, "link", "copy")
    if link not in LINK_MODES:
        raise WrapperError(f"{sm.rule}: params.link={link!r}: use copy or symlink")
    mode = verify_mode(sm, default="fast")
    _code, res = run_omrw(sm, ["resolve", str(ref), "--verify", mode], records=True)
    if resolved and res.get("digest") != doc["digest"]:
        raise WrapperError(f"{sm.rule}: {res.get('uri')} has digest {res.get('digest')}, "
                           f"not {doc['digest']} recorded in {resolved}")
    src = res.get("file_path") or res["path"]
    if os.path.isdir(out) and not os.path.islink(out):
        shutil.rmtree(out)
    elif os.path.lexists(out):
        os.remove(out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    if os.path.isdir(src):
        # A real folder either way: Snakemake writes `.snakemake_timestamp` into directory
        # outputs, which through a symlinked folder would land in the registry. Plain copies
        # (no hard links) so a job that edits its model in place never reaches the registry.
        if link == "symlink":
            shutil.copytree(src, out, copy_function=_link)
        else:
            shutil.copytree(src, out, copy_function=shutil.copyfile)
    elif link == "symlink":
        os.symlink(os.path.abspath(src), out)
    else:
        shutil.copyfile(src, out)


def _link(src, dst):
    os.symlink(os.path.abspath(src), dst)


main(snakemake, body)  # noqa: F821
