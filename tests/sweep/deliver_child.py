"""One delivery run in a process of its own, for the fault tests to kill (kill -9).

    python -m tests.sweep.deliver_child --db URL --relay URL --now ISO --journal DIR [--workers N] [--lease S]

It delivers every due digest through the real apprise channel to ``--relay`` with the library's
``deliver`` (the moment is given: nothing reads the clock for dates), then prints one JSON line
with the result.  It prints ``started`` first, so a test knows the run is under way.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from duban.db import make_engine
from duban.links import LinkMaker
from duban.sweep.delivery import deliver
from notifications.channels import AppriseChannel

SECRET = "k" * 8 + "0123456789abcdefghijklmnopqrstuv"
BASE = "https://duban.example.edu.cn"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--relay", required=True)
    parser.add_argument("--now", required=True, type=dt.datetime.fromisoformat)
    parser.add_argument("--journal", required=True, type=Path)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--lease", type=float, default=120.0)
    args = parser.parse_args(argv)
    engine = make_engine(args.db)
    channel = AppriseChannel(args.relay)
    print("started", flush=True)
    result = deliver(
        engine,
        channel,
        now=args.now,
        links=LinkMaker(BASE, SECRET, args.now.date()),
        workers=args.workers,
        lease=dt.timedelta(seconds=args.lease),
        journal_dir=args.journal,
    )
    print(json.dumps({"sent": result.sent, "failed": result.failed, "recovered": result.recovered}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
