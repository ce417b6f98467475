"""The `Version` view: one published version as every reader sees it.

Resolve, verify, diff, materialise and the storage plugin all take a `Version` from
`Registry.version(...)` instead of reading manifests themselves, so "which files", "where
their bytes live", "what digest" and "which event anchors it" have one answer each.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:  # a `fastread.ManifestDoc` when read (same fields and helpers as the model)
    from .manifest import FileEntry, Manifest


class Anchor(NamedTuple):
    """The log event that makes a version exist (register, adopt or import)."""

    seq: int
    kind: str
    event_sha256: str
    digest: str
    meta_sha256: str | None = None
    manifest_sha256: str | None = None


class Version(NamedTuple):
    """(NamedTuples, not dataclasses: `dataclasses` costs ~6 ms of resolve's start-up.)"""

    task: str
    model: str
    version: str
    key: str                         # the version folder (layout.version_key)
    data_key: str                    # where the files live (the folder, or its object-store data area)
    digest: str                      # package digest (legacy: sha256 of sha256sums.txt)
    manifest: Manifest | None = None # None for versions written by omnibioai-model-registry
    manifest_sha256: str | None = None
    legacy_sums: dict[str, str] | None = None
    anchor: Anchor | None = None

    @property
    def legacy(self) -> bool:
        return self.manifest is None

    @property
    def anchored(self) -> bool:
        return self.anchor is not None

    @property
    def ref(self) -> str:
        return f"{self.task}/{self.model}@{self.version}"

    @property
    def uri(self) -> str:
        return f"omr://{self.ref}"

    def files(self) -> list[FileEntry] | None:
        """Every file with its recorded hashes; None for legacy versions (only sha256 is known)."""
        return self.manifest.all_files() if self.manifest is not None else None

    def file_names(self) -> set[str]:
        if self.manifest is not None:
            return {e.path for e in self.manifest.all_files()}
        return set(self.legacy_sums or {}) | {"sha256sums.txt"}
