"""Private files and folders: what duban writes to disk is readable by its own user only.

Outbox files carry live action links, the SQLite database holds every person and answer, evidence
files and reports are the institution's own: files are created ``0600`` and folders ``0700``,
with explicit modes (never a process-wide umask, which every thread shares). SQLite creates its
``-wal`` and ``-shm`` files with the database file's mode, so a database file created here keeps
them private too. Files and folders that already exist keep their mode (an operator may have
opened them to a backup group on purpose), except a file rewritten through :func:`open_private`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` and its missing parents, each created ``0700`` (``mkdir -p``); returns ``path``."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:  # another thread or process made it first
            continue
        os.chmod(d, DIR_MODE)  # exact, whatever the umask
    return path


def open_private(path: str | os.PathLike[str], mode: str = "wb", **kw: Any) -> IO[Any]:
    """``open(path, mode)`` for writing, the file created (or truncated) with mode ``0600``."""
    if "w" not in mode and "a" not in mode:
        raise ValueError(f"open_private writes: mode {mode!r}")
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a file that existed keeps its mode otherwise
        return os.fdopen(fd, mode, **kw)
    except BaseException:
        os.close(fd)
        raise


def write_private_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path``, created (or truncated) with mode ``0600``: :func:`open_private`
    without a Python file object (the outbox writes thousands of files in a sweep)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a file that existed keeps its mode otherwise
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def private_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as an empty ``0600`` file (truncated if it existed), in a folder created ``0700``
    when missing: for a library that opens the file itself (openpyxl, SQLite), which keeps the mode."""
    path = Path(path)
    private_dir(path.parent)
    open_private(path).close()
    return path


def touch_private(path: str | os.PathLike[str]) -> bool:
    """Create ``path`` as an empty ``0600`` file unless it exists (never truncated: another thread
    or process may be writing it); True when created here."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), FILE_MODE))
    except FileExistsError:
        return False
    os.chmod(path, FILE_MODE)
    return True


def write_private_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """``path.write_text(text)``, the file ``0600`` and its missing folders ``0700``."""
    path = Path(path)
    private_dir(path.parent)
    with open_private(path, "w", encoding=encoding) as out:
        out.write(text)
    return path
