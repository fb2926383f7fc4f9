"""The one atomic writer: whole-or-nothing replacement, permission bits, temp-file hygiene."""

from __future__ import annotations

import os
import stat
import time

import pytest

from engine import atomic
from engine.atomic import temp_glob, write_atomic


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "pairs.jsonl"
    target.write_text("old\n")
    target.chmod(0o644)
    write_atomic(target, "new\n")
    assert target.read_text() == "new\n"
    assert mode(target) == 0o644
    target.chmod(0o640)
    write_atomic(target, b"newer\n")
    assert mode(target) == 0o640


def test_new_file_gets_umask_permissions(tmp_path):
    previous = os.umask(0o022)
    try:
        write_atomic(tmp_path / "export.jsonl", "x")
        assert mode(tmp_path / "export.jsonl") == 0o644
        os.umask(0o077)
        write_atomic(tmp_path / "private.jsonl", "x")
        assert mode(tmp_path / "private.jsonl") == 0o600
    finally:
        os.umask(previous)


def test_failure_leaves_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "status.json"
    target.write_text("old")

    def refuse(*args):
        raise OSError("disk full")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, "new")
    assert target.read_text() == "old"
    assert list(tmp_path.glob(temp_glob(target.name))) == []


def test_stale_temp_files_are_swept_fresh_ones_kept(tmp_path):
    target = tmp_path / "pairs.jsonl"
    stale = tmp_path / ".pairs.jsonl.abc123.tmp"
    fresh = tmp_path / ".pairs.jsonl.def456.tmp"
    other = tmp_path / ".other.jsonl.abc123.tmp"
    for leftover in (stale, fresh, other):
        leftover.write_text("half")
    old = time.time() - atomic.STALE_TEMP_SECONDS - 10
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    write_atomic(target, "whole")
    assert not stale.exists()
    assert fresh.exists()  # may belong to a writer still at work
    assert other.exists()  # another file's business


def test_creates_missing_folder(tmp_path):
    target = tmp_path / "a" / "b" / "report.md"
    write_atomic(target, "# report\n")
    assert target.read_text() == "# report\n"
