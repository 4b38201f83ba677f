"""佐证材料: checking, staging and storing uploaded evidence files and URLs.

What a file may be is :mod:`duban.filecheck` (an allow-list of types, each file's content checked,
archives unpacked with caps).  A submission's files are *staged*: streamed to a temporary file,
hashed and checked while the form is read; they go into the store only after the action that
refers to them is saved (:func:`keep_files`), and every other ending removes them
(:func:`discard_files`): a refused or failed submission leaves nothing on disk.

Stored files live under ``<data dir>/evidence/<first two hex digits>/<sha256>``: never under the
uploaded name, which is kept (cleaned) only as the name shown to readers.  The same file uploaded
twice is stored once.  :func:`check_quota` caps what one link and one plan in one day may store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.filecheck import ALLOWED, FileCheckError, check_file, clean_name, extension, type_reason
from duban.filecheck import FORMATS_TEXT as FORMATS_TEXT  # re-exported (the upload forms)
from duban.files import open_private, private_dir
from duban.models import Event, Evidence, Link
from duban.vocabulary import EvidenceKind

CHUNK = 1 << 16
MB = 1024 * 1024
MAX_URLS = 10
MAX_URL_LENGTH = 2000


class EvidenceError(ValueError):
    """An upload or URL that is refused (the message is shown to the user as is); ``status`` is
    the HTTP answer a page gives it (413 for a file over the size limit)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class StoredFile:
    """An accepted file: what is shown, and where it is kept (``staged``: the checked temporary
    file that :func:`keep_files` moves there once the submission is saved)."""

    filename: str  # display name (cleaned)
    stored_name: str  # "ab/<sha256>", relative to the evidence folder
    content_type: str
    size: int
    sha256: str
    staged: Path | None = None


def display_name(raw: str | None) -> str:
    """The uploaded name as safe display text: the last path part (``/`` or ``\\``), no control
    or format characters, no ``::$DATA`` stream or trailing dots and spaces, no leading dots, at
    most 120 characters; never used to name anything on disk."""
    name = clean_name((raw or "").replace("\\", "/").split("/")[-1]).lstrip(".").strip()
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:110] + dot + ext[:9]) if dot and len(ext) <= 9 else name[:120]
    return name or "附件"


def check_form_files(folder: Path, files: list, *, max_files: int, max_bytes: int) -> list[StoredFile]:
    """The files of a form's ``files`` field (empty file inputs skipped), each checked and staged;
    more than ``max_files`` is refused before anything is read.  On a refusal nothing stays staged.
    The caller keeps them with :func:`keep_files` after saving, and discards them otherwise."""
    uploads = [f for f in files if not isinstance(f, str) and (f.filename or f.size)]
    if len(uploads) > max_files:
        raise EvidenceError(f"每次最多上传 {max_files} 个文件，请分次上传或打包为 ZIP。")
    staged: list[StoredFile] = []
    try:
        for f in uploads:
            staged.append(stage_upload(folder, f.filename, f.file, max_bytes=max_bytes))
    except BaseException:
        discard_files(staged)
        raise
    return staged


def stage_upload(folder: Path, raw_name: str | None, stream: BinaryIO, *, max_bytes: int) -> StoredFile:
    """Check one uploaded file and stage it; raises :class:`EvidenceError` with the reason.

    The stream is read in chunks into a temporary file in ``<folder>/tmp``, hashed on the way,
    and given up as soon as it passes ``max_bytes``; then its content is checked.
    """
    name = display_name(raw_name)
    ext = extension(name)
    if reason := type_reason(ext):
        raise EvidenceError(f"「{name}」：{reason}")
    tmp_dir = folder / "tmp"
    private_dir(tmp_dir)  # evidence files and folders: 0600/0700 (duban/files.py)
    tmp = tmp_dir / f"upload-{secrets.token_hex(8)}"
    digest = hashlib.sha256()
    size = 0
    try:
        with open_private(tmp) as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise EvidenceError(f"文件「{name}」超过 {max_bytes // MB} MB 的大小限制，请压缩或拆分后重新上传。", 413)
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise EvidenceError(f"文件「{name}」是空文件，请检查后重新上传。")
        try:
            check_file(tmp, name)
        except FileCheckError as err:
            raise EvidenceError(str(err)) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sha = digest.hexdigest()
    return StoredFile(filename=name, stored_name=f"{sha[:2]}/{sha}", content_type=ALLOWED[ext][0], size=size, sha256=sha, staged=tmp)


def keep_files(folder: Path, files: Iterable[StoredFile]) -> None:
    """Move staged files into the store, once the submission that refers to them is saved (a
    file stored already, by an earlier submission, is left as it is)."""
    for f in files:
        if f.staged is None or not f.staged.exists():
            continue
        target = stored_path(folder, f.stored_name)
        private_dir(target.parent)  # 0700, like the staging folder (duban/files.py)
        if target.exists():
            f.staged.unlink(missing_ok=True)
        else:
            os.replace(f.staged, target)


def discard_files(files: Iterable[StoredFile]) -> None:
    """Remove what a submission staged and did not keep (it was refused, or failed): nothing of
    it stays on disk, and files stored before are never touched."""
    for f in files:
        if f.staged is not None:
            f.staged.unlink(missing_ok=True)


def check_quota(
    session: Session,
    files: Iterable[StoredFile],
    *,
    link: Link,
    task_id: int,
    today: dt.date,
    tz: dt.tzinfo,
    link_max_mb: int,
    plan_day_max_mb: int,
) -> None:
    """Refuse (413) files that would take one link past ``link_max_mb`` (all files ever recorded
    through it, to the files of ``task_id``: a 督查 answer link can be posted again and again) or its plan past
    ``plan_day_max_mb`` on the local day ``today``.  Call it in the action's transaction, with the
    link locked."""
    new = sum(f.size for f in files)
    if not new:
        return
    plan_id, link_id = link.plan_id, link.id
    since = dt.datetime.combine(today, dt.time(), tzinfo=tz).astimezone(dt.UTC)
    rows = session.execute(
        select(Evidence.size, Event.data)
        .join(Event, Event.id == Evidence.event_id)
        .where(Evidence.task_id == task_id, Evidence.kind == EvidenceKind.FILE)
    ).all()
    by_link = sum(size or 0 for size, data in rows if isinstance(data, dict) and data.get("link") == link_id)
    if by_link + new > link_max_mb * MB:
        raise EvidenceError(
            f"此链接已上传附件 {by_link / MB:.1f} MB，加上本次的 {new / MB:.1f} MB 将超过每个链接 {link_max_mb} MB 的上限，"
            "本次提交未保存。请精简或压缩材料后重新提交，或联系领导小组办公室。",
            413,
        )
    used_today = session.scalar(
        select(func.coalesce(func.sum(Evidence.size), 0)).where(
            Evidence.plan_id == plan_id, Evidence.kind == EvidenceKind.FILE, Evidence.created_at >= since
        )
    )
    if int(used_today or 0) + new > plan_day_max_mb * MB:
        raise EvidenceError(
            f"今日本计划收到的附件已接近 {plan_day_max_mb} MB 的每日上限，本次提交未保存。请明天再提交，或联系领导小组办公室。",
            413,
        )


_STORED = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{64}$")


def stored_path(folder: Path, stored_name: str) -> Path:
    """The file of a stored name (refusing anything that is not one of ours)."""
    if not _STORED.match(stored_name or ""):
        raise EvidenceError("附件记录无效。")
    return folder / stored_name


def clean_urls(text: str | Iterable[str] | None) -> list[str]:
    """Evidence URLs, one per line: http(s) only, at most :data:`MAX_URLS`."""
    lines = text.splitlines() if isinstance(text, str) else list(text or ())
    urls = []
    for line in lines:
        url = line.strip()
        if not url:
            continue
        parts = urlsplit(url)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc or any(ch.isspace() for ch in url):
            raise EvidenceError(f"链接「{url[:80]}」不是有效的网址，请填写以 http:// 或 https:// 开头的完整地址，每行一个。")
        if len(url) > MAX_URL_LENGTH:
            raise EvidenceError(f"链接过长（超过 {MAX_URL_LENGTH} 个字符），请填写较短的网址。")
        if url not in urls:
            urls.append(url)
    if len(urls) > MAX_URLS:
        raise EvidenceError(f"最多填写 {MAX_URLS} 个链接。")
    return urls


def add_evidence(session: Session, urls: list[str], files: list[StoredFile], **where: Any) -> None:
    """Record checked URLs and stored files as 佐证材料 of an event (``where``: plan, task, event,
    person, time, and the milestone, request or review item they support)."""
    for url in urls:
        session.add(Evidence(kind=EvidenceKind.URL, url=url, **where))
    for f in files:
        session.add(
            Evidence(
                kind=EvidenceKind.FILE,
                filename=f.filename,
                stored_name=f.stored_name,
                content_type=f.content_type,
                size=f.size,
                sha256=f.sha256,
                **where,
            )
        )


def human_size(n: int | None) -> str:
    if n is None:
        return ""
    if n < 1024:
        return f"{n} B"
    if n < 1024 * 1024:
        return f"{n / 1024:.0f} KB"
    return f"{n / 1024 / 1024:.1f} MB"
