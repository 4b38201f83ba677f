"""What an uploaded 佐证材料 file may be (duban.filecheck through duban.evidence.stage_upload): the
allow-list, OLE macros, archives (entries, nesting, paths, bombs) and text sniffed to the end.
Every sample is built here in code; a refused file leaves nothing in the evidence folder."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from duban import filecheck
from duban.evidence import EvidenceError, discard_files, keep_files, stage_upload
from tests.web_helpers import PDF, PNG

MB = 1024 * 1024
FORMATS = "PDF、OFD、Word、Excel、PowerPoint、WPS、图片（JPG/PNG/GIF/BMP/WEBP）、文本（TXT/CSV）或 ZIP 压缩包"
MACRO = "文件中含有宏（VBA 代码），出于安全考虑不予接收。请另存为不含宏的格式后重新上传。"
HTML = "文本文件中含有网页或脚本内容，出于安全考虑不予接收。"
UNSAFE = "压缩包内的文件路径不安全（含有“..”、绝对路径或盘符），请重新打包后上传。"
BOMB = "压缩包解压后超过 200 MB 或压缩比异常，可能是恶意文件，不予接收。请分批上传。"
END, FREE, FAT_SECTOR = 0xFFFFFFFE, 0xFFFFFFFF, 0xFFFFFFFD


def ole(*names: str, storages: tuple[str, ...] = (), shift: int = 9) -> bytes:
    """A minimal OLE compound file (``1 << shift``-byte sectors: 512, or 4096 in version 4):
    the header's sector, sector 0 the FAT, then the directory (128-byte entries): the root, then
    ``storages`` (type 1) and ``names`` (streams, type 2)."""
    size = 1 << shift
    entries = [("Root Entry", 5)] + [(n, 1) for n in storages] + [(n, 2) for n in names]
    dir_sectors = (len(entries) * 128 + size - 1) // size
    fat = [FAT_SECTOR] + [i + 2 for i in range(dir_sectors - 1)] + [END]
    header = bytearray(512)
    header[0:8] = filecheck.OLE_MAGIC
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3 if shift == 9 else 4, 0xFFFE, shift, 6)
    struct.pack_into("<IIIIIIII", header, 0x2C, 1, 1, 0, 4096, END, 0, END, 0)
    struct.pack_into("<109I", header, 0x4C, 0, *([FREE] * 108))
    fat_sector = struct.pack(f"<{len(fat)}I", *fat).ljust(size, b"\xff")
    directory = bytearray()
    for name, kind in entries:
        raw = name.encode("utf-16-le") + b"\x00\x00"
        entry = bytearray(128)
        entry[: len(raw)] = raw
        struct.pack_into("<HBB", entry, 64, len(raw), kind, 1)
        struct.pack_into("<III", entry, 68, FREE, FREE, FREE)
        directory += entry
    return bytes(header).ljust(size, b"\x00") + fat_sector + bytes(directory).ljust(dir_sectors * size, b"\x00")


def zipped(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name, (2026, 11, 30, 10, 0, 0))
            info.compress_type = method
            zf.writestr(info, data)
    return buf.getvalue()


def declared_size(data: bytes, size: int) -> bytes:
    """The zip with its (one) central directory entry claiming ``size`` bytes unpacked."""
    at = data.rindex(b"PK\x01\x02")
    return data[: at + 24] + struct.pack("<I", size) + data[at + 28 :]


def encrypted(data: bytes) -> bytes:
    """The zip with its (one) entry flagged as encrypted, in the central directory and the local header."""
    at = data.rindex(b"PK\x01\x02")
    data = data[: at + 8] + bytes([data[at + 8] | 1]) + data[at + 9 :]
    return data[:6] + bytes([data[6] | 1]) + data[7:]


def ooxml(part: str = "word/document.xml", *more: str, types: bytes = b"<Types/>") -> bytes:
    return zipped({"[Content_Types].xml": types, part: b"<w:document/>", **{m: b"x" for m in more}})


def files_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def refused(folder: Path, name: str, content: bytes) -> EvidenceError:
    with pytest.raises(EvidenceError) as err:
        stage_upload(folder, name, io.BytesIO(content), max_bytes=20 * MB)
    assert files_in(folder) == []  # nothing stored, nothing left staged
    return err.value


def dangerous_inside(archive: str, entry: str, ext: str) -> str:
    return f"压缩包「{archive}」中的「{entry}」：不接收 .{ext} 类型的文件（可执行文件、脚本、快捷方式或网页）。请从压缩包中移除后重新上传。"


def macro_format_inside(archive: str, entry: str, ext: str) -> str:
    return f"压缩包「{archive}」中的「{entry}」：出于安全考虑，不接收启用宏的 .{ext} 文件。请另存为不含宏的格式（如 .docx、.xlsx、.pptx）后重新上传。"


REFUSED = [
    # OLE files with a VBA project, found in the compound file's directory
    ("宏.xls", ole("Workbook", "_VBA_PROJECT", storages=("_VBA_PROJECT_CUR", "VBA")), f"「宏.xls」：{MACRO}"),
    ("宏.doc", ole("WordDocument", "1Table", storages=("Macros", "VBA")), f"「宏.doc」：{MACRO}"),
    ("宏.et", ole("Workbook", storages=("_VBA_PROJECT_CUR",)), f"「宏.et」：{MACRO}"),
    ("宏v4.doc", ole(*[f"ObjectPool{i}" for i in range(40)], "Macros", shift=12), f"「宏v4.doc」：{MACRO}"),  # in the 2nd sector
    ("坏.doc", filecheck.OLE_MAGIC + b"\x00" * 600, "「坏.doc」：文件内容与扩展名 .doc 不符，可能已损坏或被改名，请检查后重新上传。"),
    # OOXML with macros
    ("宏.docx", ooxml("word/document.xml", "word/vbaProject.bin"), f"「宏.docx」：{MACRO}"),
    (
        "宏.xlsx",
        ooxml("xl/workbook.xml", types=b'<Override ContentType="application/vnd.ms-excel.sheet.macroEnabled.main+xml"/>'),
        f"「宏.xlsx」：{MACRO}",
    ),
    ("宏.xlsx", ooxml("xl/workbook.xml", "xl/macrosheets/sheet1.xml"), f"「宏.xlsx」：{MACRO}"),
    # the name itself
    ("evil.exe.", b"MZ\x90\x00", f"「evil.exe」：不接收 .exe 类型的文件（可执行文件、脚本、快捷方式或网页）。请上传{FORMATS}。"),
    ("evil.exe::$DATA", b"MZ\x90\x00", f"「evil.exe」：不接收 .exe 类型的文件（可执行文件、脚本、快捷方式或网页）。请上传{FORMATS}。"),
    (
        "报表.xlsm",
        ooxml("xl/workbook.xml"),
        "「报表.xlsm」：出于安全考虑，不接收启用宏的 .xlsm 文件。请另存为不含宏的格式（如 .docx、.xlsx、.pptx）后重新上传。",
    ),
    ("图.tif", b"II*\x00", f"「图.tif」：不支持 .tif 文件。请上传{FORMATS}。"),
    # HTML anywhere in a text file, not only in its first 4 KB (and across a 64 KB read)
    ("notes.txt", b"a" * 5000 + b"<script>alert(1)</script>", f"「notes.txt」：{HTML}"),
    ("data.csv", "序号,内容\n".encode("gb18030") * 3000 + b"<IFRAME src=x>", f"「data.csv」：{HTML}"),
    ("cut.txt", b"a" * (filecheck.CHUNK - 3) + b"<html>", f"「cut.txt」：{HTML}"),
    ("nul.txt", b"a" * 70000 + b"\x00", "「nul.txt」：文件内容与扩展名 .txt 不符，可能已损坏或被改名，请检查后重新上传。"),
    # archives: entries off the allow-list (names normalised), nesting, paths, bombs
    *[
        ("材料.zip", zipped({"说明.pdf": PDF, f"附件/x.{ext}": b"[x]"}), dangerous_inside("材料.zip", f"附件/x.{ext}", ext))
        for ext in [
            "url",
            "scf",
            "chm",
            "msc",
            "xll",
            "iqy",
            "slk",
            "one",
            "vhd",
            "vhdx",
            "img",
            "wsc",
            "inf",
            "jnlp",
            "appref-ms",
            "settingcontent-ms",
        ]
    ],
    *[
        ("材料.zip", zipped({f"x.{ext}": b"PK\x03\x04"}), macro_format_inside("材料.zip", f"x.{ext}", ext))
        for ext in ("xlam", "ppam", "sldm", "ppsm", "docm")
    ],
    ("材料.zip", zipped({"evil.exe.": b"MZ"}), dangerous_inside("材料.zip", "evil.exe.", "exe")),
    ("材料.zip", zipped({"evil.exe::$DATA": b"MZ"}), dangerous_inside("材料.zip", "evil.exe::$DATA", "exe")),
    ("材料.zip", zipped({"evil.exe \u202e": b"MZ"}), dangerous_inside("材料.zip", "evil.exe ", "exe")),
    (
        "材料.zip",
        zipped({"a.pdf": PDF, "内层.zip": zipped({"run.exe": b"MZ"})}),
        "压缩包「材料.zip」中的「内层.zip」中的「run.exe」：不接收 .exe 类型的文件（可执行文件、脚本、快捷方式或网页）。请从压缩包中移除后重新上传。",
    ),
    (
        "材料.zip",
        zipped({"宏.xls": ole("Workbook", storages=("_VBA_PROJECT_CUR", "VBA"))}),
        f"压缩包「材料.zip」中的「宏.xls」：{MACRO}",
    ),
    ("材料.zip", zipped({"a.txt": b"<script>x</script>"}), f"压缩包「材料.zip」中的「a.txt」：{HTML}"),
    (
        "材料.zip",
        zipped({"假.pdf": b"MZ\x90"}),
        "压缩包「材料.zip」中的「假.pdf」：文件内容与扩展名 .pdf 不符，可能已损坏或被改名，请检查后重新上传。",
    ),
    ("材料.zip", zipped({"..\\..\\evil.txt": b"x"}), f"压缩包「材料.zip」中的「..\\..\\evil.txt」：{UNSAFE}"),
    ("材料.zip", zipped({"a/../../evil.txt": b"x"}), f"压缩包「材料.zip」中的「a/../../evil.txt」：{UNSAFE}"),
    ("材料.zip", zipped({"C:\\Windows\\evil.txt": b"x"}), f"压缩包「材料.zip」中的「C:\\Windows\\evil.txt」：{UNSAFE}"),
    ("材料.zip", zipped({"/etc/evil.txt": b"x"}), f"压缩包「材料.zip」中的「/etc/evil.txt」：{UNSAFE}"),
    ("材料.zip", zipped({"内层.zip": zipped({"..\\x.txt": b"x"})}), f"压缩包「材料.zip」中的「内层.zip」中的「..\\x.txt」：{UNSAFE}"),
    (
        "a.zip",
        zipped({"b.zip": zipped({"c.zip": zipped({"d.zip": zipped({"e.pdf": PDF})})})}),
        "压缩包「a.zip」中的「b.zip」中的「c.zip」中的「d.zip」：压缩包嵌套超过 3 层，请解开内层压缩包后重新打包上传。",
    ),
    ("bomb.zip", declared_size(zipped({"big.txt": b"0" * 1000}), 1024 * MB), f"「bomb.zip」：{BOMB}"),  # 1 GB declared
    ("bomb.zip", zipped({"zeros.txt": b"0" * (3 * MB)}), f"「bomb.zip」：{BOMB}"),  # ratio, found while unpacking
    ("bomb.zip", zipped({"内层.zip": zipped({"zeros.txt": b"0" * (3 * MB)})}), f"压缩包「bomb.zip」中的「内层.zip」：{BOMB}"),
    (
        "lie.zip",
        declared_size(zipped({"zeros.txt": b"0" * (3 * MB)}), 1000),  # claims 1000 bytes: read no further than that
        "压缩包「lie.zip」中的「zeros.txt」：压缩包中的文件无法读取（BadZipFile），可能已损坏，请重新打包后上传。",
    ),
    (
        "密.zip",
        encrypted(zipped({"a.pdf": PDF})),
        "压缩包「密.zip」中的「a.pdf」：压缩包已加密，无法检查其中的内容，请去除密码后重新上传。",
    ),
    ("many.zip", zipped({f"{i}.txt": b"x" for i in range(1001)}), "「many.zip」：压缩包中的文件超过 1000 个，请分批上传。"),
    ("坏.zip", b"PK\x03\x04broken", "「坏.zip」：文件内容与扩展名 .zip 不符，可能已损坏或被改名，请检查后重新上传。"),
    ("坏.ofd", zipped({"Doc_0/Document.xml": b"<x/>"}), "「坏.ofd」：文件内容与扩展名 .ofd 不符，可能已损坏或被改名，请检查后重新上传。"),
]


@pytest.mark.parametrize(("name", "content", "message"), REFUSED)
def test_refused_files_name_the_file_and_the_entry_and_store_nothing(tmp_path, name, content, message):
    err = refused(tmp_path / "evidence", name, content)
    assert str(err) == message
    assert err.status == 400


ACCEPTED = [
    ("报告.doc", ole("WordDocument", "1Table", "\x05SummaryInformation"), "application/msword"),
    ("表.xls", ole("Workbook", "\x05DocumentSummaryInformation"), "application/vnd.ms-excel"),
    ("大.ppt", ole("PowerPoint Document", "Current User", shift=12), "application/vnd.ms-powerpoint"),
    ("报告.docx", ooxml(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("发票.ofd", zipped({"OFD.xml": b"<ofd:OFD/>", "Doc_0/Document.xml": b"<x/>"}), "application/ofd"),
    ("图.bmp", b"BM" + b"\x00" * 60, "image/bmp"),
    ("图.PNG", PNG, "image/png"),
    ("名单.csv", "序号,姓名\n1,张三\n".encode("gb18030") * 8000, "text/csv; charset=utf-8"),  # GBK, 176 KB
    ("说明.txt", "第一段：<不是标签> a < b\n".encode() * 5000, "text/plain; charset=utf-8"),
    (
        "材料.zip",
        zipped(
            {
                "材料/": b"",
                "材料/说明.pdf": PDF,
                "材料/报告.docx": ooxml(),
                "材料/照片.zip": zipped({"1.png": PNG, "2/3.zip": zipped({"4.txt": b"ok"})}),  # three levels
                "__MACOSX/材料/._说明.pdf": filecheck.APPLE_DOUBLE + b"\x00\x02",
                "材料/.DS_Store": filecheck.DS_STORE + b"\x00" * 8,
            }
        ),
        "application/zip",
    ),
    ("stored.zip", zipped({"a.txt": b"0" * (2 * MB)}, zipfile.ZIP_STORED), "application/zip"),  # not compressed: no ratio
]


@pytest.mark.parametrize(("name", "content", "ctype"), ACCEPTED)
def test_accepted_files_are_staged_then_kept_by_their_hash(tmp_path, name, content, ctype):
    folder = tmp_path / "evidence"
    f = stage_upload(folder, name, io.BytesIO(content), max_bytes=20 * MB)
    assert (f.filename, f.content_type, f.size) == (name, ctype, len(content))
    assert files_in(folder) == [f.staged]  # staged only: not in the store until kept
    keep_files(folder, [f])
    assert files_in(folder) == [folder / f.sha256[:2] / f.sha256]
    assert (folder / f.stored_name).read_bytes() == content


def test_discarded_files_leave_nothing_and_a_file_stored_before_stays(tmp_path):
    folder = tmp_path / "evidence"
    first = stage_upload(folder, "a.pdf", io.BytesIO(PDF), max_bytes=MB)
    keep_files(folder, [first])
    again = stage_upload(folder, "b.pdf", io.BytesIO(PDF), max_bytes=MB)  # the same bytes, refused later
    discard_files([again])
    assert files_in(folder) == [folder / first.stored_name]
    keep_files(folder, [again])  # nothing staged any more: nothing happens
    assert files_in(folder) == [folder / first.stored_name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("evil.exe.", "evil.exe"),
        ("evil.exe::$DATA", "evil.exe"),
        ("报告.pdf . .", "报告.pdf"),
        ("..\\..\\win.ini.pdf", "win.ini.pdf"),
        ("a\u202efdp.exe", "afdp.exe"),
        ("", "附件"),
    ],
)
def test_display_names_are_what_windows_would_save(name, expected):
    from duban.evidence import display_name

    assert display_name(name) == expected
