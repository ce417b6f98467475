"""Running a committed event's hooks, and where their outcome is kept (I/O around `hooks.py`).

Hooks come from two places only: the registry's policy when it is *verified* against this
writer's trust root, and the writer's own hooks file (`$OMR_HOOKS`). An unsigned or
unverified policy's hooks never run: anyone who can write the shared registry could
otherwise make every writer run a command. What each hook did is written once to
`audit/hooks/<seq>.json` (`omrw history --hooks` shows it); nothing here can undo or fail the
event, which was committed before.
"""

from __future__ import annotations

import os

from .events import STATE_FIELDS
from . import layout
from .errors import OmrError

ENV_HOOKS = "OMR_HOOKS"


def configured_hooks(reg) -> list:
    hooks = []
    try:
        lp = reg.loaded_policy()
    except OmrError:
        lp = None
    if lp is not None and lp.verified:
        hooks.extend(lp.policy.hooks)
    path = os.environ.get(ENV_HOOKS)
    if path:
        from .hooks import load_hooks
        from .policy import read_file

        hooks.extend(load_hooks(read_file(path, f"hooks file {path}"), path).hooks)
    return hooks


def run_for_event(reg, mkey: str, event) -> list:
    """Run the hooks for `event` and record what they did; never raises for a hook's failure."""
    hooks = configured_hooks(reg)
    if not hooks:
        return []
    from .hooks import HookResult, run_hooks

    ref = f"{event.task}/{event.model_name}"
    body = event.model_dump(mode="json", exclude=STATE_FIELDS)
    results = run_hooks(hooks, kind=event.kind, ref=ref, seq=event.seq, event=body, registry=reg.url)
    if results:
        import json

        data = json.dumps([r.model_dump(mode="json") if isinstance(r, HookResult) else r for r in results],
                          indent=2).encode() + b"\n"
        try:
            reg.storage.write_if_absent(layout.hook_log_key(mkey, event.seq), data)
        except (OmrError, OSError):
            pass  # the log of a notification is not worth failing a committed event for
    return results


def hook_log(reg, task: str, model: str, seq: int) -> list[dict] | None:
    from .bounds import load_json_bounded
    from .errors import NotFoundError

    key = layout.hook_log_key(layout.model_key(task, model), seq)
    try:
        data = reg.storage.read_small(key, 1 << 20)
    except NotFoundError:
        return None
    except OmrError:
        return [{"error": "hook log unreadable (planted?)"}]
    try:
        out = load_json_bounded(data, key)
    except OmrError:
        return [{"error": "hook log damaged"}]
    return out if isinstance(out, list) else [{"error": "hook log damaged"}]
