"""Storage backends behind one interface, chosen by URL scheme.

A plain path or `file://` URL uses the standard-library backend (no fsspec import, so a
local `omrw resolve` starts fast); every other scheme (`s3://`, `memory://` in tests, ...)
goes through fsspec, which imports the scheme's driver only when used and names the extra to
install when it is missing.
"""

from __future__ import annotations

from ..errors import StorageError
from .base import FileInfo, Kind, Stage, Storage, lease_is_dead, lease_ttl, parse_lease

EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure"}


def open_storage(url: str) -> Storage:
    if "://" not in url or url.startswith("file://"):
        from .local import LocalStorage

        return LocalStorage(url[len("file://"):] if url.startswith("file://") else url)
    scheme = url.split("://", 1)[0]
    if scheme != "memory":
        from ..constants import offline

        if offline():
            # Before any driver is imported: an air-gapped node must fail in milliseconds, not
            # after a resolver or credential lookup times out and retries.
            raise StorageError(f"offline (OMR_OFFLINE=1): refusing to open remote registry {url}; use a local "
                               f"mirror (`omrw mirror`, `omrw import`)", obj=url)
    from .remote import RemoteStorage

    try:
        return RemoteStorage(url)
    except ImportError as e:
        hint = f"pip install 'omr-workflows[{EXTRAS[scheme]}]'" if scheme in EXTRAS else "install its fsspec driver"
        raise StorageError(f"registry {url}: no driver for {scheme}:// ({e}); {hint}") from None
    except ValueError as e:
        raise StorageError(f"registry {url}: {e}") from None


__all__ = ["FileInfo", "Kind", "Stage", "Storage", "lease_is_dead", "lease_ttl", "open_storage", "parse_lease"]
