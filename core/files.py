"""Run folders: one writer at a time, and files that are either old or new, never torn.

* `RunLock(folder, command)`: a context manager that makes `folder` (and its parents),
  then holds an exclusive `fcntl.flock` on `folder/.lock` and writes the holder into it
  (pid, host, start time, command). A second holder is refused with `FolderInUse`, whose
  message names the folder and the first holder. The kernel drops a flock when its process
  dies, so a killed run never leaves a stale lock: the rerun simply takes it. The lock file
  stays behind (removing it would race with a process that just opened it); its content
  only describes the last holder. `OSError` (the folder is a file, is not writable, ...)
  comes out as `FolderError` naming the path and the reason.
* `atomic_write_text(path, text)`: writes a temporary file unique to this process and call
  in the same folder, flushes it to disk, then `os.replace`s it over `path`. Readers see
  the old file or the new one; two processes never share a temporary name.

POSIX only (fcntl), like the rest of the run machinery.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

LOCK_NAME = ".lock"
_counter = itertools.count()


class FolderError(ValueError):
    """A run folder that cannot be used (a file in the way, no permission, ...)."""


class FolderInUse(FolderError):
    """Another live process holds the folder's lock."""


class RunLock:
    def __init__(self, folder: Path, command: str | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.command = command if command is not None else " ".join(sys.argv)
        self._handle: IO[str] | None = None

    def acquire(self) -> RunLock:
        if self.folder.exists() and not self.folder.is_dir():
            raise FolderError(f"{self.folder} exists and is not a folder")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle = self.path.open("a+", encoding="utf-8")
        except OSError as exc:
            raise FolderError(f"cannot write in {self.folder}: {exc.strerror}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            raise FolderInUse(
                f"{self.folder} is in use by another run ({holder}); wait for it to finish "
                "or choose another folder"
            ) from None
        handle.seek(0)
        handle.truncate()
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": self.command,
        }
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        self._handle = handle
        return self

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.release()


def _describe(text: str) -> str:
    """'pid 123 on host h since T, command: ...' from a lock file's content."""
    try:
        record = json.loads(text)
        return (
            f"pid {record['pid']} on {record['host']} since {record['started']}, "
            f"command: {record['command']}"
        )
    except (ValueError, KeyError, TypeError):
        return "holder not recorded yet"


def atomic_write_text(path: Path, text: str) -> None:
    """Replace `path` with `text` (UTF-8) so that no reader ever sees a partial file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{next(_counter)}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
