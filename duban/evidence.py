"""佐证材料: checking and storing uploaded evidence files and URLs.

A file is accepted when both its extension and its content (the first bytes, and for Office
files and zips the archive's table of contents) belong to one allowed type; executables, web
pages, scripts and SVG are refused whatever they are called.  Files are stored under
``<data dir>/evidence/<first two hex digits>/<sha256>``: never under the uploaded name, which is
kept (cleaned) only as the name shown to readers.  The same file uploaded twice is stored once.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import unicodedata
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from duban.files import open_private, private_dir
from duban.models import Evidence
from duban.vocabulary import EvidenceKind

CHUNK = 1 << 16

# extension -> (content type, kind of content it must have)
ALLOWED: dict[str, tuple[str, str]] = {
    "pdf": ("application/pdf", "pdf"),
    "doc": ("application/msword", "ole"),
    "xls": ("application/vnd.ms-excel", "ole"),
    "ppt": ("application/vnd.ms-powerpoint", "ole"),
    "wps": ("application/vnd.ms-works", "ole"),  # WPS 文字
    "et": ("application/vnd.ms-excel", "ole"),  # WPS 表格
    "dps": ("application/vnd.ms-powerpoint", "ole"),  # WPS 演示
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", "pptx"),
    "jpg": ("image/jpeg", "jpeg"),
    "jpeg": ("image/jpeg", "jpeg"),
    "png": ("image/png", "png"),
    "gif": ("image/gif", "gif"),
    "webp": ("image/webp", "webp"),
    "txt": ("text/plain; charset=utf-8", "text"),
    "csv": ("text/csv; charset=utf-8", "text"),
    "zip": ("application/zip", "zip"),
}
# refused with a specific message (whatever the content): programs, scripts, web pages
DANGEROUS = frozenset(
    [
        "exe",
        "com",
        "bat",
        "cmd",
        "msi",
        "msp",
        "scr",
        "pif",
        "cpl",
        "dll",
        "sys",
        "ps1",
        "psm1",
        "vbs",
        "vbe",
        "js",
        "jse",
        "mjs",
        "wsf",
        "wsh",
        "hta",
        "jar",
        "apk",
        "sh",
        "bash",
        "py",
        "pl",
        "rb",
        "php",
        "asp",
        "aspx",
        "jsp",
        "html",
        "htm",
        "xhtml",
        "shtml",
        "mht",
        "mhtml",
        "svg",
        "svgz",
        "xml",
        "xsl",
        "swf",
        "lnk",
        "reg",
        "iso",
        "dmg",
        "app",
        "docm",
        "xlsm",
        "pptm",
        "dotm",
        "xltm",
        "potm",
    ]
)
FORMATS_TEXT = "PDF、Word、Excel、PowerPoint、WPS、图片（JPG/PNG/GIF/WEBP）、文本（TXT/CSV）或 ZIP 压缩包"
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
HTML_MARKERS = (b"<!doctype", b"<html", b"<script", b"<svg", b"<iframe", b"<body", b"<head", b"<?xml", b"<object", b"<embed")
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
    """An accepted file: where it is kept and what is shown."""

    filename: str  # display name (cleaned)
    stored_name: str  # "ab/<sha256>", relative to the evidence folder
    content_type: str
    size: int
    sha256: str
    created: bool = False  # this upload put the file there (it was not stored before)


def display_name(raw: str | None) -> str:
    """The uploaded name as safe display text: the last path part (``/`` or ``\\``), no control
    characters, at most 120 characters; never used to name anything on disk."""
    name = (raw or "").replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().lstrip(".")
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:110] + dot + ext[:9]) if dot and len(ext) <= 9 else name[:120]
    return name or "附件"


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    for enc in ("utf-8", "gb18030"):
        try:
            head.decode(enc)
            return True
        except UnicodeDecodeError as err:
            if enc == "utf-8" and err.start >= len(head) - 3:  # a character cut by the sniff window
                return True
    return False


def _looks_like_html(head: bytes) -> bool:
    low = head.lower()
    return any(m in low for m in HTML_MARKERS)


def _zip_names(path: Path) -> list[str] | None:
    try:
        with zipfile.ZipFile(path) as zf:
            return zf.namelist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return None


def check_content(path: Path, ext: str, head: bytes) -> None:
    """Refuse a file whose content is not what its extension says (or is dangerous inside)."""
    kind = ALLOWED[ext][1]
    wrong = EvidenceError(f"文件内容与扩展名 .{ext} 不符，可能已损坏或被改名，请检查后重新上传。")
    if kind == "pdf":
        if not head.startswith(b"%PDF-"):
            raise wrong
    elif kind == "ole":
        if not head.startswith(OLE_MAGIC):
            raise wrong
    elif kind == "jpeg":
        if not head.startswith(b"\xff\xd8\xff"):
            raise wrong
    elif kind == "png":
        if not head.startswith(b"\x89PNG\r\n\x1a\n"):
            raise wrong
    elif kind == "gif":
        if not head.startswith((b"GIF87a", b"GIF89a")):
            raise wrong
    elif kind == "webp":
        if not (head.startswith(b"RIFF") and head[8:12] == b"WEBP"):
            raise wrong
    elif kind == "text":
        if not _is_text(head):
            raise wrong
        if _looks_like_html(head):
            raise EvidenceError("文本文件中含有网页或脚本内容，出于安全考虑不予接收。")
    elif kind in ("docx", "xlsx", "pptx", "zip"):
        if not head.startswith(b"PK\x03\x04"):
            raise wrong
        names = _zip_names(path)
        if names is None:
            raise wrong
        if kind != "zip":
            part = {"docx": "word/", "xlsx": "xl/", "pptx": "ppt/"}[kind]
            if "[Content_Types].xml" not in names or not any(n.startswith(part) for n in names):
                raise wrong
            if any(n.lower().endswith("vbaproject.bin") for n in names):
                raise EvidenceError("文件中含有宏，出于安全考虑不予接收。请另存为不含宏的格式后重新上传。")
        else:
            bad = [n for n in names if extension(n.rstrip("/")) in DANGEROUS or n.startswith("/") or ".." in n.split("/")]
            if bad:
                raise EvidenceError(f"压缩包中含有不予接收的文件（{display_name(bad[0])}），请移除可执行文件、脚本或网页后重新上传。")


def store_form_files(folder: Path, files: list, *, max_files: int, max_bytes: int) -> list[StoredFile]:
    """The files of a form's ``files`` field (empty file inputs skipped), each checked and stored;
    more than ``max_files`` is refused before anything is stored."""
    uploads = [f for f in files if not isinstance(f, str) and (f.filename or f.size)]
    if len(uploads) > max_files:
        raise EvidenceError(f"每次最多上传 {max_files} 个文件，请分次上传或打包为 ZIP。")
    return [store_upload(folder, f.filename, f.file, max_bytes=max_bytes) for f in uploads]


def store_upload(folder: Path, raw_name: str | None, stream: BinaryIO, *, max_bytes: int) -> StoredFile:
    """Check and store one uploaded file; raises :class:`EvidenceError` with the reason.

    The stream is read in chunks into a temporary file beside its destination, hashed on the
    way, and given up as soon as it passes ``max_bytes``.
    """
    name = display_name(raw_name)
    ext = extension(name)
    if ext in DANGEROUS:
        raise EvidenceError(f"不接收 .{ext} 类型的文件（可执行文件、脚本或网页）。请上传{FORMATS_TEXT}。")
    if ext not in ALLOWED:
        shown = f" .{ext} " if ext else "无扩展名的"
        raise EvidenceError(f"不支持{shown}文件。请上传{FORMATS_TEXT}。")
    tmp_dir = folder / "tmp"
    private_dir(tmp_dir)  # evidence files and folders: 0600/0700 (duban/files.py)
    tmp = tmp_dir / f"upload-{secrets.token_hex(8)}"
    digest = hashlib.sha256()
    size = 0
    head = b""
    try:
        with open_private(tmp) as out:
            while True:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise EvidenceError(f"文件「{name}」超过 {max_bytes // (1024 * 1024)} MB 的大小限制，请压缩或拆分后重新上传。", 413)
                if len(head) < 4096:
                    head += chunk[: 4096 - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise EvidenceError(f"文件「{name}」是空文件，请检查后重新上传。")
        check_content(tmp, ext, head)
        sha = digest.hexdigest()
        stored = f"{sha[:2]}/{sha}"
        target = folder / stored
        private_dir(target.parent)
        created = not target.exists()
        if created:
            os.replace(tmp, target)
        else:
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return StoredFile(filename=name, stored_name=stored, content_type=ALLOWED[ext][0], size=size, sha256=sha, created=created)


def discard_new_files(folder: Path, files: Iterable[StoredFile]) -> None:
    """Remove the files a submission stored when the store did not record it (it stayed busy):
    only those this submission created, so a file an earlier record refers to stays. (A second
    submission of the very same file, recorded while this one waited, would lose it: both would
    have to arrive within the same busy spell.)"""
    for f in files:
        if f.created:
            stored_path(folder, f.stored_name).unlink(missing_ok=True)


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
