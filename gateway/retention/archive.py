"""Archive files of ``gateway retention``: one gzip'd tar per UTC day, with a manifest.

A day's file is only ever replaced whole: the new file (the members already in it, then the new
ones, then ``MANIFEST.json``) is written to a temp file beside it, fsynced and renamed over it,
and the directory fsynced, before the database lets go of any bytes. A crash at any point
leaves the old file or the whole new one, and every member the database points at in it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.files import fsync_dir
from gateway.store.archive_members import ArchiveError, read_member

__all__ = ["MANIFEST", "ArchiveError", "Entry", "day_file", "read_member", "write_day"]

#: The manifest member: one object per member (kind, ids, MsgId, SHA-256, size).
MANIFEST = "MANIFEST.json"


@dataclass(frozen=True, slots=True)
class Entry:
    """One member to archive, with what the manifest says of it (ids, never a national id)."""

    member: str
    data: bytes
    facts: dict[str, object]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def day_file(directory: Path, day: str) -> Path:
    """The archive file of a UTC day (``YYYY-MM-DD``)."""
    return directory / f"gateway-{day}.tar.gz"


def write_day(path: Path, entries: Sequence[Entry]) -> None:
    """Write ``path`` durably with its current members (if it exists) and ``entries`` (which
    replace members of the same name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    new_names = {e.member for e in entries}
    manifest = [f for f in _manifest(path) if f.get("member") not in new_names]
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        # 0600: the archive holds health data, as the database does.
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz") as out:
                if path.exists():
                    _copy_members(path, out, skip=new_names | {MANIFEST})
                for entry in entries:
                    _add(out, entry.member, entry.data)
                    manifest.append(
                        {"member": entry.member, "sha256": entry.sha256, "size": len(entry.data)}
                        | entry.facts
                    )
                _add(out, MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
            raw.flush()
            os.fsync(raw.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _manifest(path: Path) -> list[dict[str, object]]:
    if not path.exists():
        return []
    with tarfile.open(path, mode="r:gz") as archive:
        try:
            handle = archive.extractfile(MANIFEST)
        except KeyError:
            return []
        if handle is None:
            return []
        loaded = json.loads(handle.read())
    if not isinstance(loaded, list):
        raise ArchiveError(f"{path}: {MANIFEST} is not a list")
    return [dict(f) for f in loaded if isinstance(f, dict)]


def _copy_members(path: Path, out: tarfile.TarFile, *, skip: set[str]) -> None:
    with tarfile.open(path, mode="r:gz") as old:
        for info in old:
            if info.name in skip or not info.isfile():
                continue
            handle = old.extractfile(info)
            if handle is not None:
                out.addfile(info, handle)


def _add(out: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    out.addfile(info, io.BytesIO(data))
