"""One atomic writer for every file the product writes (pairs, exports, run config and
status, traces, reports, settings).

    write_atomic(path, b"...")          # bytes
    write_atomic(path, "...")           # text, UTF-8, newlines as given

The data goes to a temporary file in the same folder (`.<name>.<random>.tmp`), is flushed
and fsynced, and replaces the target with `os.replace`, so a reader sees the old file or the
new one, whole, even when the process is killed mid-write. The folder is fsynced afterwards
so the rename itself survives a power cut (best effort: not every platform allows it).

Permissions: a replaced file keeps its mode bits; a new file gets the ordinary mode a plain
`open()` would give it (0666 less the umask), not mkstemp's 0600.
The temporary file is removed on every failure path; ones a killed process left behind
(the `TEMP_GLOB` pattern, ignored by git) are swept on the next successful write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import time
from pathlib import Path

TEMP_SUFFIX = ".tmp"
# Temp files older than this are a killed writer's leftovers; younger ones may be a
# concurrent writer's file in flight and are left alone.
STALE_TEMP_SECONDS = 60.0


def temp_glob(name: str) -> str:
    """The glob pattern matching `name`'s temporary files."""
    return f".{name}.*{TEMP_SUFFIX}"


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Replace `path` with `data` atomically; returns the path written."""
    target = Path(path)
    if target.is_dir():  # else os.replace fails naming the temporary file, not the folder given
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(target))
    for folder in target.parents:  # a file where a folder of the path belongs: name that file
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
            break
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    mode = _mode_for(target)
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as temp:
            temp.write(payload)
            temp.flush()
            os.fchmod(temp.fileno(), mode)
            os.fsync(temp.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _fsync_dir(target.parent)
    _sweep_stale_temps(target)
    return target


def _mode_for(target: Path) -> int:
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # /proc tells without changing it; os.umask's set-and-restore is a fallback that
    # briefly changes the process-wide value.
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)
    os.umask(current)
    return current


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sweep_stale_temps(target: Path) -> None:
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in target.parent.glob(temp_glob(target.name)):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
