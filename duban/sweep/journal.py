"""The delivery journal: a local line per message a channel took, written before the store is told.

Between a relay accepting a message and the store marking it sent there is a window. When the
process dies in it — kill -9 while the store is locked, a power cut — the message would go out
again once its claim is recovered: with eight workers waiting on a locked store, eight repeats.
The journal closes the window.  Right after a channel takes a message, the sender appends one
line to its run's file (``<data>/delivery/<claim token>.jsonl``, flushed to disk); only then is
the store marked.  Whoever recovers a dead run's claims (``duban.sweep.claims.recover``) first
marks sent what its journal lists, then releases the rest.  A run that marked everything removes
its file.

The journal is local: it recovers the runs of this machine (the data folder).  A run that died
on another machine is recovered from the store alone, after its lease.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from duban.files import private_dir


@dataclass(frozen=True)
class Entry:
    digest_id: int
    via: str
    at: dt.datetime


def _file(folder: Path, token: str) -> Path:
    return folder / f"{token.replace(':', '_').replace('/', '_')}.jsonl"


class Journal:
    """The journal of one delivery run (``folder`` None: no journal, e.g. an in-memory test)."""

    def __init__(self, folder: Path | None, token: str):
        self.path = _file(folder, token) if folder is not None else None
        self._fd: int | None = None
        self._lock = threading.Lock()

    def record(self, digest_id: int, via: str, at: dt.datetime) -> None:
        """Append that ``digest_id`` went out (durably: the line is on disk when this returns)."""
        if self.path is None:
            return
        line = json.dumps({"id": digest_id, "via": via, "at": at.isoformat()}, ensure_ascii=False) + "\n"
        with self._lock:
            if self._fd is None:
                private_dir(self.path.parent)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(self._fd, line.encode("utf-8"))
            os.fsync(self._fd)

    def close(self, *, all_marked: bool) -> None:
        """Close the file; remove it when the store has every line (nothing left to recover)."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if all_marked and self.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()


def read(folder: Path | None, token: str) -> list[Entry]:
    """What a run's journal says went out (a torn last line, from a crash mid-write, is skipped)."""
    if folder is None:
        return []
    try:
        text = _file(folder, token).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    entries = []
    for line in text.splitlines():
        try:
            d = json.loads(line)
            entries.append(Entry(int(d["id"]), str(d["via"]), dt.datetime.fromisoformat(d["at"])))
        except (ValueError, KeyError, TypeError):
            continue
    return entries


def discard(folder: Path | None, token: str) -> None:
    if folder is not None:
        with contextlib.suppress(FileNotFoundError):
            _file(folder, token).unlink()


def tokens(folder: Path | None) -> list[str]:
    """The runs that left a journal here (their tokens, as the store spells them)."""
    if folder is None or not folder.is_dir():
        return []
    return sorted(_token_of(p.stem) for p in folder.glob("*.jsonl"))


def _token_of(stem: str) -> str:
    # host_pid_random → host:pid:random (the host name may itself contain underscores)
    host, _, rest = stem.rpartition("_")
    host, _, pid = host.rpartition("_")
    return f"{host}:{pid}:{rest}"
