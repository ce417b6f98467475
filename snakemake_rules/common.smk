# Settings and helpers of the omr rule library (included by omr.smk).
#
# The settings are config["omr"] when that key exists, else the whole config, validated
# against schemas/config.schema.yaml (defaults filled in). Everything here is prefixed
# omr_/OMR_ because with `include:` it shares the including Snakefile's namespace.

import json as _omr_json
import os as _omr_os
import re as _omr_re

from snakemake.utils import min_version as _omr_min_version
from snakemake.utils import validate as _omr_validate

_omr_min_version("9.0")

OMR_CONFIG = config["omr"] if isinstance(config.get("omr"), dict) else config
_omr_validate(OMR_CONFIG, schema="schemas/config.schema.yaml")

OMR_OUTDIR = OMR_CONFIG["outdir"].rstrip("/")
OMR_MODELS = dict(OMR_CONFIG["models"])
OMR_REGISTER = dict(OMR_CONFIG["register"])
OMR_PROMOTE = dict(OMR_CONFIG["promote"])
OMR_APPROVE = dict(OMR_CONFIG["approve"])
OMR_IMPORT = dict(OMR_CONFIG["import"])
OMR_MIRROR = dict(OMR_CONFIG["mirror"])
# Governance: the trust root the consumers check against, the key the writers sign with
# (None: omrw's own defaults, $OMR_TRUST / ./omr-trust.json and $OMR_SIGNING_KEY).
OMR_TRUST = OMR_CONFIG["trust"]
OMR_KEY = OMR_CONFIG["key"]
OMR_LOCK = OMR_CONFIG["lock"]
OMR_HOME = str(workflow.current_basedir)
OMR_WRAPPERS = _omr_os.path.join(OMR_HOME, "wrappers", "omr")


def omr_wrapper(op):
    return f"file:{OMR_WRAPPERS}/{op}"


def _omr_names_regex(names):
    # a name list as a wildcard constraint; an empty list matches nothing
    return "|".join(_omr_re.escape(n) for n in sorted(names)) or "(?!)"


def _omr_check_promote():
    for name, spec in OMR_PROMOTE.items():
        if name not in OMR_REGISTER and not spec.get("ref"):
            raise ValueError(f"omr config: promote.{name} names no register entry and has no ref")


def _omr_check_approve():
    for name, spec in OMR_APPROVE.items():
        if spec.get("register", name) not in OMR_REGISTER and not spec.get("ref"):
            raise ValueError(f"omr config: approve.{name} names no register entry and has no ref")


def _omr_check_mirror():
    for name, spec in OMR_MIRROR.items():
        if bool(spec.get("lock")) + bool(spec.get("models")) + bool(spec.get("all")) != 1:
            raise ValueError(f"omr config: mirror.{name} needs exactly one of lock, models and all: true")


_omr_check_promote()
_omr_check_approve()
_omr_check_mirror()


def omr_trust_file():
    """The configured trust root as an absolute path (jobs may run elsewhere), or None."""
    if not OMR_TRUST or OMR_TRUST == "none":
        return OMR_TRUST
    return _omr_os.path.abspath(OMR_TRUST)


def omr_signing_key(spec=None):
    """The key an entry (approve/promote/register/import/mirror) signs with: its own `key`, else config `key`."""
    key = (spec or {}).get("key") or OMR_KEY
    return _omr_os.path.abspath(key) if key else None


# ---------------------------------------------------------------- paths (use them in your rules)
def omr_resolved(name):
    """The `omrw resolve --json` document of model `name` (version, digest, path...)."""
    return f"{OMR_OUTDIR}/resolved/{name}.json"


def omr_model_dir(name):
    """The verified local copy of model `name`'s version folder."""
    return f"{OMR_OUTDIR}/models/{name}"


def omr_registered(name):
    return f"{OMR_OUTDIR}/registered/{name}.json"


def omr_promoted(name):
    return f"{OMR_OUTDIR}/promoted/{name}.json"


def omr_approved(name):
    return f"{OMR_OUTDIR}/approved/{name}.json"


def omr_imported(name):
    """The `omrw import --json` summary of bundle `name` (versions, digests, imported|present)."""
    return f"{OMR_OUTDIR}/imported/{name}.json"


def omr_mirrored(name):
    """The `omrw mirror --json` summary of mirror `name` (versions, copied|present, bytes_copied)."""
    return f"{OMR_OUTDIR}/mirrored/{name}.json"


def omr_provenance_html():
    return f"{OMR_OUTDIR}/provenance/omr_provenance.html"


def omr_verify_report():
    return f"{OMR_OUTDIR}/verify/report.json"


def omr_lock_file():
    return OMR_LOCK or f"{OMR_OUTDIR}/omr.lock.json"


def _omr_records(kind, name):
    return f"{OMR_OUTDIR}/provenance/records/{kind}-{name}"


def _omr_produced_records():
    """Record folders of the register/promote jobs this run's targets include (the report then
    lists the versions the run produced and promoted); none when it only reads models."""
    targets = set(OMR_CONFIG["targets"])
    out = []
    if targets & {"register", "promote"}:
        out += [_omr_records("register", n) for n in OMR_REGISTER]
    if "promote" in targets:
        out += [_omr_records("promote", n) for n in OMR_PROMOTE]
    return out


# ---------------------------------------------------------------- what a reference is now
_omr_pins = {}


def omr_pin(name):
    """What model `name` resolves to right now, as `VERSION@DIGEST`.

    It is a param of the resolve rule, so Snakemake reruns the resolve job (and, through
    its output, everything that uses the model) when an alias moves: the `params` rerun
    trigger. Resolving reads at most two small objects. With a lock file the pin is the
    lock file itself (its modification time is a rule input), so promotions change nothing.
    """
    if OMR_LOCK:
        return "locked"
    if name not in _omr_pins:
        try:
            from omr_workflows.policy import find_trust
            from omr_workflows.registry import Registry

            # Under the same trust root as the resolve job: an alias that is not an approved
            # promotion pins as `unresolved` and the resolve job fails (exit 1); once the
            # approvals move it, the pin changes and the job reruns.
            reg = Registry(OMR_CONFIG["registry"], trust=find_trust(omr_trust_file()))
            res = reg.resolve(OMR_MODELS[name], verify="none", materialize=False)
            _omr_pins[name] = f"{res.version}@{res.digest}"
        except Exception as e:  # the resolve job reports it properly (exit code, log)
            _omr_pins[name] = f"unresolved: {type(e).__name__}"
    return _omr_pins[name]


def omr_verify_selection():
    """params for the verify wrapper from `verification.scope`."""
    scope = OMR_CONFIG["verification"]["scope"]
    if scope == "all":
        return {"all": True, "refs": None}
    if scope == "models":
        if not OMR_MODELS:
            raise ValueError("omr config: verification.scope is `models` but no models are configured")
        return {"all": False, "refs": sorted(set(OMR_MODELS.values()))}
    return {"all": False, "refs": list(scope)}


def omr_all_inputs():
    targets = set(OMR_CONFIG["targets"])
    out = []
    if "resolve" in targets:
        out += [omr_resolved(n) for n in OMR_MODELS]
    if "fetch" in targets and OMR_CONFIG["fetch"]:
        out += [omr_model_dir(n) for n in OMR_MODELS]
    if "provenance" in targets and (OMR_MODELS or _omr_produced_records()):
        out.append(omr_provenance_html())
    if "verify" in targets:
        out.append(omr_verify_report())
    if "register" in targets:
        out += [omr_registered(n) for n in OMR_REGISTER]
    if "promote" in targets:
        out += [omr_promoted(n) for n in OMR_PROMOTE]
    if "approve" in targets:
        out += [omr_approved(n) for n in OMR_APPROVE]
    if "import" in targets:
        out += [omr_imported(n) for n in OMR_IMPORT]
    if "mirror" in targets:
        out += [omr_mirrored(n) for n in OMR_MIRROR]
    if "lock" in targets:
        out.append(omr_lock_file())
    return out
