"""The fuzz suite (tests/fuzz/): property-based tests (hypothesis) and the route fuzzer.

Every test here is marked ``fuzz`` (CI runs them with the rest), bounded by ``max_examples`` and
a per-example ``deadline``, and derandomized: the same cases are tried on every run and every
machine, so a failure in CI is a failure on a laptop.  At the end of the session the counts of
cases tried are printed (SECURITY.md cites them).
"""

from __future__ import annotations

import pytest

from tests.fuzz.counts import COUNTS


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/fuzz/" in item.nodeid:
            item.add_marker(pytest.mark.fuzz)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not COUNTS:
        return
    terminalreporter.write_sep("-", "fuzz: cases tried")
    for name, n in sorted(COUNTS.items()):
        terminalreporter.write_line(f"{name}: {n}")
    terminalreporter.write_line(f"total: {sum(COUNTS.values())}")
