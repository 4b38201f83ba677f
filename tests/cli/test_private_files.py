"""What duban writes to disk is readable by its own user only (issue 17): the SQLite database and
its -wal/-shm files, outbox files (live links), evidence, reports and the delivery journal are
created 0600 in folders created 0700, whatever the umask."""

from __future__ import annotations

import datetime as dt
import io
import os
import stat
from pathlib import Path

import pytest
from sqlalchemy import text

from duban.db import make_engine, upgrade
from duban.evidence import keep_files, stage_upload
from duban.files import open_private, private_dir, private_file, touch_private, write_private_text
from duban.report import write_report
from duban.sweep.journal import Journal
from duban.vocabulary import MessageKind
from notifications.channel import Outgoing
from notifications.outbox import OutboxChannel
from tests.rollup.test_rollup import build_scenario, compute
from tests.web_helpers import PDF


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def open_umask():
    """The usual umask (022), under which a plain open() creates files world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sqlite_database_and_its_wal_and_shm_files(tmp_path):
    db = tmp_path / "data" / "duban.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    with engine.connect() as conn:  # WAL mode: -wal and -shm exist while a connection is open
        conn.execute(text("SELECT 1"))
        files = {p.name: oct(mode(p)) for p in db.parent.iterdir()}
        assert files == {"duban.db": "0o600", "duban.db-wal": "0o600", "duban.db-shm": "0o600"}
    engine.dispose()
    assert oct(mode(db.parent)) == "0o700"


def test_an_existing_database_keeps_its_mode(tmp_path):
    db = tmp_path / "duban.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    engine.dispose()
    os.chmod(db, 0o640)  # opened to a backup group on purpose
    engine = make_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    engine.dispose()
    assert oct(mode(db)) == "0o640"


def test_outbox_files_with_live_links(tmp_path):
    payload = {"kind": MessageKind.TEST, "recipient": "张三", "now": "2026-11-23 09:00", "office": "督办员", "items": []}
    out = Outgoing(7, 1, "张三", "zs@example.org", dt.date(2026, 11, 23), "【督办系统】通知", payload, 0)
    channel = OutboxChannel(tmp_path / "outbox")
    channel.send(out)
    path = channel.path_for(out)
    assert path.read_text(encoding="utf-8").startswith("收件人：张三 <zs@example.org>\n主题：【督办系统】通知\n")
    assert [oct(mode(p)) for p in (path, path.parent, tmp_path / "outbox")] == ["0o600", "0o700", "0o700"]
    path.chmod(0o644)  # a retry rewrites the file: private again
    channel.send(out)
    assert oct(mode(path)) == "0o600"


def test_evidence_files_and_folders(tmp_path):
    stored = stage_upload(tmp_path / "evidence", "记录.pdf", io.BytesIO(PDF), max_bytes=1 << 20)
    keep_files(tmp_path / "evidence", [stored])
    path = tmp_path / "evidence" / stored.stored_name
    assert path.read_bytes() == PDF
    modes = [oct(mode(p)) for p in (path, path.parent, tmp_path / "evidence", tmp_path / "evidence" / "tmp")]
    assert modes == ["0o600", "0o700", "0o700", "0o700"]


def test_reports(engine, tmp_path, use_database):
    build_scenario(engine, tmp_path)
    files = write_report(compute(engine, plan_code="rollup"), tmp_path / "out" / "2026", generated_at=dt.datetime(2026, 11, 23, 17, 0))
    assert [oct(mode(p)) for p in (files.html, files.xlsx)] == ["0o600", "0o600"]
    assert [oct(mode(p)) for p in (tmp_path / "out", tmp_path / "out" / "2026")] == ["0o700", "0o700"]


def test_delivery_journal(tmp_path):
    journal = Journal(tmp_path / "delivery", "run:1")
    journal.record(5, "email", dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC))
    journal.close(all_marked=False)
    [path] = (tmp_path / "delivery").iterdir()
    assert [oct(mode(path)), oct(mode(path.parent))] == ["0o600", "0o700"]


def test_the_helpers(tmp_path):
    folder = private_dir(tmp_path / "a" / "b")
    assert [oct(mode(tmp_path / "a")), oct(mode(folder))] == ["0o700", "0o700"]
    existing = tmp_path / "shared"
    existing.mkdir(mode=0o755)
    private_dir(existing / "x")
    assert oct(mode(existing)) == "0o755"  # an existing folder keeps its mode
    f = write_private_text(tmp_path / "c" / "t.txt", "你好")
    assert f.read_text(encoding="utf-8") == "你好" and oct(mode(f)) == "0o600"
    with open_private(f, "a", encoding="utf-8") as out:
        out.write("！")
    assert f.read_text(encoding="utf-8") == "你好！"
    assert private_file(f).read_bytes() == b"" and oct(mode(f)) == "0o600"
    assert touch_private(tmp_path / "new") is True and touch_private(f) is False
    assert oct(mode(tmp_path / "new")) == "0o600"
    with pytest.raises(ValueError, match="writes"):
        open_private(f, "r")
