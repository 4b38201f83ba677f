"""What an uploaded 佐证材料 file may be: the allow-list of types, and the checks of its content.

A file is accepted when its extension is on the allow-list (:data:`ALLOWED`: what offices send)
and its content is that type:

- PDF, images (JPG/PNG/GIF/BMP/WEBP): the leading bytes;
- OLE (doc, xls, ppt, wps, et, dps): the header, and the compound file's directory read from the
  file, refused when it holds a VBA project (``Macros``, ``VBA``, ``_VBA_PROJECT(_CUR)``);
- OOXML (docx, xlsx, pptx): a zip with ``[Content_Types].xml`` and its part folder, refused with
  ``vbaProject.bin``, macro sheets or a macro-enabled content type; OFD: a zip with ``OFD.xml``;
- TXT/CSV: the whole file, streamed: UTF-8 or GB18030 text, no HTML or script anywhere;
- ZIP: every entry's name (normalised: ``\\`` as ``/``, trailing dots and spaces, ``::$DATA``
  streams; absolute paths, drive letters and ``..`` refused) on the same allow-list, and every
  entry's content checked the same way, nested archives included up to :data:`MAX_DEPTH` levels.

Every archive (OOXML and OFD too) is decompressed while it is checked, with a byte cap
(:data:`MAX_UNPACKED` for one upload, all archives together), a cap on the number of entries and
on the compression ratio: the sizes the archive declares are not trusted.

A refusal is a :class:`FileCheckError` whose message names the file (and the entry inside an
archive) and says what is accepted.
"""

from __future__ import annotations

import codecs
import contextlib
import re
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 16
MB = 1024 * 1024
MAX_DEPTH = 3  # archives inside archives: a zip in a zip in a zip; a fourth level is refused
MAX_ENTRIES = 1000  # entries of one upload, all its archives together
MAX_UNPACKED = 200 * MB  # bytes after decompression, all archives of one upload together
MAX_RATIO = 100  # unpacked / packed of an entry larger than RATIO_FLOOR
RATIO_FLOOR = MB
MAX_CONTENT_TYPES = MB  # [Content_Types].xml is read to look for macro-enabled parts

# extension -> (content type, kind of content it must have)
ALLOWED: dict[str, tuple[str, str]] = {
    "pdf": ("application/pdf", "pdf"),
    "ofd": ("application/ofd", "ofd"),  # 版式文档 (GB/T 33190), e-invoices and official documents
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
    "bmp": ("image/bmp", "bmp"),
    "webp": ("image/webp", "webp"),
    "txt": ("text/plain; charset=utf-8", "text"),
    "csv": ("text/csv; charset=utf-8", "text"),
    "zip": ("application/zip", "zip"),
}
# Office formats that carry macros: refused with the advice to save without them
MACRO_ENABLED = frozenset(["docm", "dotm", "xlsm", "xltm", "xlam", "xlsb", "pptm", "potm", "ppsm", "ppam", "sldm"])
# not on the allow-list anyway; named in the refusal as programs, scripts, shortcuts or web pages
_DANGEROUS_WORDS = """exe com bat cmd msi msp msc scr pif cpl dll sys ocx drv ps1 psm1 psd1 vbs vbe js jse mjs wsf wsh wsc
    sct hta jar jnlp apk sh bash py pl rb php asp aspx jsp html htm xhtml shtml mht mhtml svg svgz xml
    xsl swf lnk url scf website inf ini reg chm hlp iso img vhd vhdx dmg app application appref-ms
    settingcontent-ms one xll iqy slk library-ms search-ms"""
DANGEROUS = frozenset(_DANGEROUS_WORDS.split())
FORMATS_TEXT = "PDF、OFD、Word、Excel、PowerPoint、WPS、图片（JPG/PNG/GIF/BMP/WEBP）、文本（TXT/CSV）或 ZIP 压缩包"


def accept_attribute() -> str:
    """The ``accept=`` list of every file input: the allow-list's extensions and their MIME types
    (without parameters). The in-app browsers of WeCom, DingTalk and WeChat open only the photo
    picker for a bare ``<input type=file>``; with the list they offer the phone's files too."""
    types = dict.fromkeys(ctype.split(";")[0].strip() for ctype, _ in ALLOWED.values())
    return ",".join([f".{ext}" for ext in ALLOWED] + list(types))


OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
HTML_MARKERS = (
    b"<!doctype",
    b"<html",
    b"<script",
    b"<svg",
    b"<iframe",
    b"<body",
    b"<head",
    b"<?xml",
    b"<object",
    b"<embed",
    b"<meta",
    b"<style",
)
OVERLAP = max(len(m) for m in HTML_MARKERS) - 1
VBA_STORAGES = frozenset({"macros", "vba", "_vba_project", "_vba_project_cur"})
OOXML_PARTS = {"docx": "word/", "xlsx": "xl/", "pptx": "ppt/"}
APPLE_DOUBLE = b"\x00\x05\x16\x07"
DS_STORE = b"\x00\x00\x00\x01Bud1"
_DRIVE = re.compile(r"^[a-zA-Z]:")


class FileCheckError(ValueError):
    """A file that is not accepted; the message names it and says why (shown as is)."""


@dataclass
class Budget:
    """What the archives of one upload have used so far."""

    entries: int = 0
    unpacked: int = 0


class _ReasonError(Exception):
    """A reason (Chinese), and the entry it is about when that is deeper than the file checked."""

    def __init__(self, reason: str, where: tuple[str, ...] = ()):
        super().__init__(reason)
        self.reason = reason
        self.where = where


def clean_name(raw: str) -> str:
    """One name part as Windows would write it: no control or format characters (RTL tricks),
    no alternate data stream (``evil.exe::$DATA`` is ``evil.exe``), no trailing dots or spaces."""
    name = unicodedata.normalize("NFC", raw)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    return name.split(":", 1)[0].rstrip(" .").strip()


def extension(name: str) -> str:
    return name.rpartition(".")[2].lower() if "." in name else ""


def type_reason(ext: str, *, inside: bool = False) -> str | None:
    """Why a file with this extension is refused (None: it is on the allow-list)."""
    if ext in ALLOWED:
        return None
    todo = "请从压缩包中移除后重新上传。" if inside else f"请上传{FORMATS_TEXT}。"
    if ext in MACRO_ENABLED:
        return f"出于安全考虑，不接收启用宏的 .{ext} 文件。请另存为不含宏的格式（如 .docx、.xlsx、.pptx）后重新上传。"
    if ext in DANGEROUS:
        return f"不接收 .{ext} 类型的文件（可执行文件、脚本、快捷方式或网页）。{todo}"
    return f"不支持 .{ext} 文件。{todo}" if ext else f"不支持无扩展名的文件。{todo}"


def mismatch(ext: str) -> str:
    return f"文件内容与扩展名 .{ext} 不符，可能已损坏或被改名，请检查后重新上传。"


MACRO = "文件中含有宏（VBA 代码），出于安全考虑不予接收。请另存为不含宏的格式后重新上传。"
HTML = "文本文件中含有网页或脚本内容，出于安全考虑不予接收。"
UNSAFE_PATH = "压缩包内的文件路径不安全（含有“..”、绝对路径或盘符），请重新打包后上传。"
ENCRYPTED = "压缩包已加密，无法检查其中的内容，请去除密码后重新上传。"
TOO_DEEP = f"压缩包嵌套超过 {MAX_DEPTH} 层，请解开内层压缩包后重新打包上传。"
TOO_MANY = f"压缩包中的文件超过 {MAX_ENTRIES} 个，请分批上传。"
BOMB = f"压缩包解压后超过 {MAX_UNPACKED // MB} MB 或压缩比异常，可能是恶意文件，不予接收。请分批上传。"


def located(where: tuple[str, ...]) -> str:
    """「a.pdf」, or 压缩包「a.zip」中的「b/c.zip」中的「d.exe」."""
    if len(where) == 1:
        return f"「{where[0]}」"
    return f"压缩包「{where[0]}」" + "".join(f"中的「{w}」" for w in where[1:])


def check_file(path: Path, name: str) -> None:
    """Check one uploaded file (its display ``name`` gives the extension); :class:`FileCheckError`
    names the file, and the entry inside an archive, with the reason."""
    try:
        _check(path, extension(name), Budget(), depth=0)
    except _ReasonError as err:
        raise FileCheckError(f"{located((name, *err.where))}：{err.reason}") from None


def _check(path: Path, ext: str, budget: Budget, *, depth: int) -> None:
    reason = type_reason(ext)
    if reason:
        raise _ReasonError(reason)
    kind = ALLOWED[ext][1]
    with open(path, "rb") as f:
        head = f.read(4096)
    if not _head_fits(kind, head):
        raise _ReasonError(mismatch(ext))
    if kind == "ole":
        names = ole_names(path)
        if names is None:
            raise _ReasonError(mismatch(ext))
        if any(n.lower() in VBA_STORAGES for n in names):
            raise _ReasonError(MACRO)
    elif kind == "text":
        _check_text(path, ext)
    elif kind in ("zip", "ofd", *OOXML_PARTS):
        if kind == "zip" and depth >= MAX_DEPTH:
            raise _ReasonError(TOO_DEEP)
        _check_archive(path, ext, kind, budget, depth=depth)


def _head_fits(kind: str, head: bytes) -> bool:
    if kind == "pdf":
        return head.startswith(b"%PDF-")
    if kind == "ole":
        return head.startswith(OLE_MAGIC)
    if kind == "jpeg":
        return head.startswith(b"\xff\xd8\xff")
    if kind == "png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "gif":
        return head.startswith((b"GIF87a", b"GIF89a"))
    if kind == "bmp":
        return head.startswith(b"BM") and len(head) >= 26
    if kind == "webp":
        return head.startswith(b"RIFF") and head[8:12] == b"WEBP"
    if kind == "text":
        return True  # the whole file is read below
    return head.startswith(b"PK\x03\x04")  # zip, ofd, docx, xlsx, pptx


def _check_text(path: Path, ext: str) -> None:
    """The whole file, in chunks: UTF-8 or GB18030 text without NUL, and no HTML or script
    (markers cut by a chunk boundary are found: each window keeps the end of the last one)."""
    decoders = [codecs.getincrementaldecoder(enc)() for enc in ("utf-8", "gb18030")]
    alive = [True, True]
    tail = b""
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            if b"\x00" in chunk:
                raise _ReasonError(mismatch(ext))
            _feed(decoders, alive, chunk, final=False)
            window = (tail + chunk).lower()
            if any(m in window for m in HTML_MARKERS):
                raise _ReasonError(HTML)
            tail = window[-OVERLAP:]
    _feed(decoders, alive, b"", final=True)


def _feed(decoders: list, alive: list[bool], data: bytes, *, final: bool) -> None:
    for i, dec in enumerate(decoders):
        if alive[i]:
            try:
                dec.decode(data, final)
            except UnicodeDecodeError:
                alive[i] = False
    if not any(alive):
        raise _ReasonError("文本文件的编码无法识别（应为 UTF-8 或 GBK/GB18030），请另存为 UTF-8 编码后重新上传。")


# -- OLE (compound file) directory -------------------------------------------------------------------

_END = 0xFFFFFFFA  # sector numbers from here on are markers (end of chain, free, FAT, DIFAT)


def ole_names(path: Path) -> list[str] | None:
    """The names in an OLE compound file's directory (storages and streams), read by following
    the FAT sector by sector; None when the file is not a readable compound file."""
    try:
        with open(path, "rb") as f:
            return _ole_directory(f, path.stat().st_size)
    except (OSError, IndexError, ValueError):
        return None


def _u32s(block: bytes) -> list[int]:
    return [int.from_bytes(block[i : i + 4], "little") for i in range(0, len(block) - 3, 4)]


def _ole_directory(f: BinaryIO, file_size: int) -> list[str] | None:
    header = f.read(512)
    if len(header) < 512 or not header.startswith(OLE_MAGIC):
        return None
    shift = int.from_bytes(header[0x1E:0x20], "little")
    if shift not in (9, 12):
        return None
    size = 1 << shift
    sectors = (file_size + size - 1) // size - 1  # the header takes the first sector

    def sector(n: int) -> bytes:
        if n >= sectors:
            raise ValueError("sector out of range")
        f.seek((n + 1) * size)
        return f.read(size).ljust(size, b"\x00")

    n_fat, dir_start, difat_next = (int.from_bytes(header[o : o + 4], "little") for o in (0x2C, 0x30, 0x44))
    fat_sectors = [s for s in _u32s(header[0x4C:0x200]) if s < _END]
    for _ in range(sectors):  # the DIFAT chain (files over 6.8 MB)
        if difat_next >= _END or len(fat_sectors) >= n_fat:
            break
        difat = _u32s(sector(difat_next))
        fat_sectors += [s for s in difat[:-1] if s < _END]
        difat_next = difat[-1]
    fat = [n for s in fat_sectors[:n_fat] for n in _u32s(sector(s))]
    names: list[str] = []
    current = dir_start
    for _ in range(sectors + 1):
        if current >= _END:
            return names
        block = sector(current)
        for i in range(0, size, 128):
            entry = block[i : i + 128]
            length, kind = int.from_bytes(entry[64:66], "little"), entry[66]
            if kind in (1, 2, 5) and 2 <= length <= 64:
                names.append(entry[: length - 2].decode("utf-16-le", "replace"))
        current = fat[current]
    return None  # the chain loops


# -- archives ----------------------------------------------------------------------------------------


def entry_name(info: zipfile.ZipInfo) -> str:
    """An entry's name as the packer meant it: without the UTF-8 flag, Chinese Windows packers
    write GBK, which :mod:`zipfile` read as cp437."""
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeEncodeError, UnicodeDecodeError):
            name = name.encode("cp437").decode("gb18030")
    return name


def unsafe_path(name: str) -> bool:
    """An entry that would land outside the folder it is unpacked into."""
    path = name.replace("\\", "/")
    if path.startswith("/") or _DRIVE.match(path):
        return True
    return any(p.strip(" ") and not p.strip(" .") and p.strip(" ") != "." for p in path.split("/"))


def _check_archive(path: Path, ext: str, kind: str, budget: Budget, *, depth: int) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError):
        raise _ReasonError(mismatch(ext)) from None
    with zf:
        infos = zf.infolist()
        budget.entries += len(infos)
        if budget.entries > MAX_ENTRIES:
            raise _ReasonError(TOO_MANY)
        if budget.unpacked + sum(i.file_size for i in infos) > MAX_UNPACKED:
            raise _ReasonError(BOMB)
        names = [entry_name(i) for i in infos]
        for info, name in zip(infos, names, strict=True):
            shown = clean_name(name.replace("\\", "/")) if kind != "zip" else _shown(name)
            if unsafe_path(name):
                raise _ReasonError(UNSAFE_PATH, (_shown(name),))
            if info.flag_bits & 0x1:
                raise _ReasonError(ENCRYPTED, () if kind != "zip" else (shown,))
            if kind == "zip" and not info.is_dir():
                _check_entry(zf, info, name, path.parent, budget, depth=depth)
            else:
                _count(zf, info, budget, shown)
        if kind == "ofd" and not any(n.replace("\\", "/").lower() == "ofd.xml" for n in names):
            raise _ReasonError(mismatch(ext))
        if kind in OOXML_PARTS:
            _check_ooxml(zf, names, ext, kind)


def _shown(name: str) -> str:
    return "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")[:200]


def _check_ooxml(zf: zipfile.ZipFile, names: list[str], ext: str, kind: str) -> None:
    lower = [n.replace("\\", "/").lower() for n in names]
    if "[content_types].xml" not in lower or not any(n.startswith(OOXML_PARTS[kind]) for n in lower):
        raise _ReasonError(mismatch(ext))
    if any(n.endswith("vbaproject.bin") or "/macrosheets/" in n or n.endswith("vbadata.xml") for n in lower):
        raise _ReasonError(MACRO)
    with zf.open(zf.infolist()[lower.index("[content_types].xml")]) as f:
        types = f.read(MAX_CONTENT_TYPES).lower()
    if b"macroenabled" in types or b"vbaproject" in types:
        raise _ReasonError(MACRO)


def _count(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: Budget, shown: str, out: BinaryIO | None = None) -> None:
    """Decompress one entry (into ``out`` when given), counting its bytes against the budget and
    its compression ratio: a bomb is stopped at the cap, whatever its header says."""
    read = 0
    try:
        with zf.open(info) as f:
            while chunk := f.read(CHUNK):
                read += len(chunk)
                budget.unpacked += len(chunk)
                if budget.unpacked > MAX_UNPACKED or (read > RATIO_FLOOR and read > MAX_RATIO * max(info.compress_size, 1)):
                    raise _ReasonError(BOMB)
                if out is not None:
                    out.write(chunk)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, EOFError, RuntimeError) as err:
        raise _ReasonError(f"压缩包中的文件无法读取（{err.__class__.__name__}），可能已损坏，请重新打包后上传。", (shown,)) from None


def _check_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, tmp_dir: Path, budget: Budget, *, depth: int) -> None:
    """One file inside a zip: its cleaned name on the allow-list, then its content, unpacked to a
    temporary file (removed after) and checked as an upload of its own."""
    shown = _shown(name)
    base = clean_name(name.replace("\\", "/").rstrip("/").rpartition("/")[2])
    ext = extension(base)
    special = _special(name, base)
    if special is None and (reason := type_reason(ext, inside=True)):
        raise _ReasonError(reason, (shown,))
    tmp = tmp_dir / f"entry-{secrets.token_hex(8)}"
    try:
        with open(tmp, "wb") as out:
            _count(zf, info, budget, shown, out)
        if special is not None:
            with open(tmp, "rb") as f:
                if f.read(len(special)) == special:
                    return  # Finder's metadata
            if (reason := type_reason(ext, inside=True)) is not None:
                raise _ReasonError(reason, (shown,))
        try:
            _check(tmp, ext, budget, depth=depth + 1)
        except _ReasonError as err:
            raise _ReasonError(err.reason, (shown, *err.where)) from None
    finally:
        tmp.unlink(missing_ok=True)


def _special(name: str, base: str) -> bytes | None:
    """The magic of Finder's metadata entries (``.DS_Store``, ``__MACOSX/._*``), accepted
    whatever they are called when their content is that."""
    if base.lower() == ".ds_store":
        return DS_STORE
    if name.replace("\\", "/").startswith("__MACOSX/") and base.startswith("._"):
        return APPLE_DOUBLE
    return None
