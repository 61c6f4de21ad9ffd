"""Durable writes of many files at once: whole or not at all, synced before they appear."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import gateway.files
from gateway.files import write_all_atomically


def test_every_file_is_written_whole_and_no_temp_file_stays(tmp_path: Path) -> None:
    files = [(tmp_path / f"reply-{i}.eml", os.urandom(1000 * i + 1)) for i in range(5)]
    write_all_atomically(files)
    for path, data in files:
        assert path.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p, _ in files)


def test_no_file_appears_before_the_data_of_all_is_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [(tmp_path / f"r{i}", b"x" * 100) for i in range(3)]
    seen: list[list[str]] = []
    real = gateway.files._sync_data

    def sync(fds: list[int]) -> None:
        seen.append(sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")))
        real(fds)

    monkeypatch.setattr(gateway.files, "_sync_data", sync)
    write_all_atomically(files)
    assert seen == [[]], "synced once, while only temp files existed"


def test_without_syncfs_each_file_is_fsynced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gateway.files, "_syncfs", lambda: None)
    synced: list[int] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    write_all_atomically([(tmp_path / "a", b"1"), (tmp_path / "b", b"2")])
    assert len(synced) == 3, "each file, then the directory once"
    assert (tmp_path / "a").read_bytes() == b"1"


def test_a_failure_leaves_no_temp_file_and_no_part_of_the_batch(tmp_path: Path) -> None:
    good = tmp_path / "good"
    missing = tmp_path / "no-such-directory" / "reply"
    with pytest.raises(FileNotFoundError):
        write_all_atomically([(good, b"1"), (missing, b"2")])
    assert list(tmp_path.iterdir()) == [], "nothing renamed, the temp file removed"
