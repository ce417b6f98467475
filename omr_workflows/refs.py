"""Model references: one pure parser.

Grammar (docs/DESIGN.md, "References and names")::

    ref      = ["omr://"] task "/" model ["@" selector] ["#" file]
    selector = alias | version | "sha256:" 64*HEXDIG
    file     = relative POSIX path inside the version

`task`, `model`, `alias` and `version` follow the name rule in `names.py`. No selector
means `@latest`. Whether a name selector is an alias or a version is decided at resolve
time (an alias wins, as in omnibioai-model-registry), so the parser only says `name`.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from .errors import InvalidInputError
from .names import check_name, check_relpath

SCHEME = "omr://"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")
DEFAULT_SELECTOR = "latest"


class Ref(NamedTuple):
    """A parsed reference (a NamedTuple, not a dataclass: `dataclasses` costs ~6 ms of start-up)."""

    task: str
    model: str
    selector: str = DEFAULT_SELECTOR
    file: str | None = None
    explicit_selector: bool = True

    @property
    def selector_is_digest(self) -> bool:
        return self.selector.startswith("sha256:")

    @property
    def model_key(self) -> str:
        return f"{self.task}/{self.model}"

    def __str__(self) -> str:
        text = f"{self.task}/{self.model}@{self.selector}"
        return f"{text}#{self.file}" if self.file else text

    def with_selector(self, selector: str) -> "Ref":
        return Ref(self.task, self.model, selector, self.file, True)


def parse_ref(text: str) -> Ref:
    """Parse a reference; raise InvalidInputError naming the bad part."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("invalid reference '': expected TASK/MODEL[@SELECTOR][#FILE]")
    raw = text.strip()
    body = raw[len(SCHEME):] if raw.startswith(SCHEME) else raw
    file = None
    if "#" in body:
        body, file = body.split("#", 1)
        try:
            check_relpath(file, "file in reference")
        except InvalidInputError as e:
            raise InvalidInputError(f"invalid reference {raw!r}: {e}") from None
    selector, explicit = DEFAULT_SELECTOR, False
    if "@" in body:
        body, selector = body.split("@", 1)
        explicit = True
    parts = body.split("/")
    if len(parts) != 2:
        raise InvalidInputError(f"invalid reference {raw!r}: expected TASK/MODEL[@SELECTOR][#FILE]")
    try:
        task = check_name(parts[0], "task")
        model = check_name(parts[1], "model")
        if selector.startswith("sha256:"):
            if not DIGEST_RE.fullmatch(selector):
                raise InvalidInputError(f"invalid digest {selector!r}: expected sha256: and 64 lowercase hex digits")
        else:
            check_name(selector, "selector")
    except InvalidInputError as e:
        raise InvalidInputError(f"invalid reference {raw!r}: {e}") from None
    return Ref(task, model, selector, file, explicit)


def parse_model_key(text: str) -> tuple[str, str]:
    """Parse `TASK/MODEL` (no selector allowed)."""
    ref = parse_ref(text)
    if ref.explicit_selector or ref.file:
        raise InvalidInputError(f"invalid model {text!r}: expected TASK/MODEL without @ or #")
    return ref.task, ref.model
