"""The evidence checker (duban/evidence.py ``store_upload``, which runs ``check_content``) on
random names and bytes: every upload is stored under its hash or refused with ``EvidenceError``
and a Chinese message, never another exception; a refused upload leaves nothing on disk, and an
accepted one is exactly the bytes sent, under an allowed extension."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
import warnings
import zipfile
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from duban import evidence
from duban.evidence import ALLOWED, EvidenceError, extension
from duban.filecheck import MACRO_ENABLED
from tests.fuzz.counts import COUNTS, fuzz
from tests.web_helpers import PDF, PNG

# what must never be stored, whatever the allow-list says (programs, scripts, pages, shortcuts, macros)
DANGEROUS = MACRO_ENABLED | {
    *("exe", "com", "bat", "cmd", "scr", "pif", "msi", "msc", "cpl", "dll", "js", "jse", "vbs", "vbe", "wsf", "wsc", "wsh", "ps1"),
    *("hta", "html", "htm", "xhtml", "svg", "shtml", "jar", "jnlp", "lnk", "url", "scf", "chm", "iqy", "slk", "xll", "one"),
    *("vhd", "vhdx", "img", "iso", "inf", "reg", "appref-ms", "settingcontent-ms"),
}
CJK = re.compile(r"[\u4e00-\u9fff]")
MAX_BYTES = 64 * 1024
MAGIC = [
    b"%PDF-1.4\n",
    bytes.fromhex("D0CF11E0A1B11AE1"),
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\0\0\0\0WEBP",
    b"PK\x03\x04",
    b"",
]
EXTS = sorted(ALLOWED) + sorted(DANGEROUS)[:20] + ["", "exe.", "pdf.exe", "txt::$DATA", "PDF", "Zip", "xl", "tar.gz"]

names = st.one_of(
    st.text(max_size=200),
    st.builds(lambda stem, ext: f"{stem}.{ext}", st.text(max_size=40), st.sampled_from(EXTS)),
    st.sampled_from(["../../etc/passwd.txt", "..\\..\\boot.ini.txt", "/abs/evil.pdf", "a\x00.pdf", "report.pdf\r\n.exe", ".pdf", "", None]),
)


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are part of the test
        for name, data in members:
            with contextlib.suppress(IndexError, ValueError):  # names zipfile cannot write ("/", NUL)
                zf.writestr(name, data)
    return out.getvalue()


member_names = st.one_of(st.text(min_size=1, max_size=60), st.builds(lambda s, e: f"{s}.{e}", st.text(max_size=20), st.sampled_from(EXTS)))
zips = st.lists(st.tuples(member_names, st.binary(max_size=200)), max_size=6).map(zip_of)
contents = st.one_of(
    st.binary(max_size=4096),
    st.builds(lambda m, rest: m + rest, st.sampled_from(MAGIC), st.binary(max_size=2048)),
    zips,
    zips.flatmap(lambda z: st.integers(0, len(z)).map(lambda n: z[:n])),  # truncated archives
    st.text(max_size=3000).map(str.encode),
    st.builds(lambda pad, tag: pad.encode() + tag, st.text(max_size=5000), st.sampled_from([b"<script>", b"<HTML>", b"<svg onload=x>"])),
    st.integers(MAX_BYTES - 2, MAX_BYTES + 2).map(lambda n: b"a" * n),
)


def store(folder: Path, name: str | None, data: bytes) -> evidence.StoredFile:
    """Check and keep one upload as a saved submission does: ``store_upload``, or, once the uploads
    slice of issue 17 is merged, ``stage_upload`` then ``keep_files``."""
    if hasattr(evidence, "stage_upload"):
        staged = evidence.stage_upload(folder, name, io.BytesIO(data), max_bytes=MAX_BYTES)
        evidence.keep_files(folder, [staged])
        return staged
    return evidence.store_upload(folder, name, io.BytesIO(data), max_bytes=MAX_BYTES)


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@fuzz(400, deadline_ms=3000)
@given(names, contents)
@example("x.zip", zip_of([("evil.exe", b"MZ")]))
@example("x.zip", zip_of([("../../x.txt", b"a")]))
@example("x.docx", zip_of([("[Content_Types].xml", b""), ("word/vbaProject.bin", b"")]))
@example("notes.txt", b"hello <script>alert(1)</script>")
@example("report.pdf", PDF)
@example("photo.png", PNG)
@example("big.txt", b"a" * (MAX_BYTES + 1))
def test_an_upload_is_stored_as_sent_or_refused_with_a_message(name, data):
    COUNTS["evidence: uploads"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            stored = store(folder, name, data)
        except EvidenceError as err:
            COUNTS["evidence: uploads refused"] += 1
            assert CJK.search(str(err)) and err.status in (400, 413), repr(err)
            assert files_under(folder) == [], "a refused upload left a file"
            return
        ext = extension(stored.filename)
        assert ext in ALLOWED and ext not in DANGEROUS
        assert "/" not in stored.filename and "\\" not in stored.filename
        assert not any(ord(c) < 32 for c in stored.filename)
        assert files_under(folder) == [folder / stored.stored_name]
        assert (folder / stored.stored_name).read_bytes() == data and stored.size == len(data) <= MAX_BYTES
        if ALLOWED[ext][1] == "zip":
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                assert not [n for n in zf.namelist() if extension(n.rstrip("/")) in DANGEROUS or ".." in n.split("/")]
        if ALLOWED[ext][1] == "text":
            head = data[:4096].lower()
            assert b"<script" not in head and b"<html" not in head and b"<svg" not in head
