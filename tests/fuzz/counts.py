"""How many cases the fuzz suite tried, by target (printed at the end of the session)."""

from __future__ import annotations

import os
from collections import Counter

from hypothesis import HealthCheck, settings

COUNTS: Counter[str] = Counter()

# the fuzz suite's settings: the same cases on every run (derandomize, no example database), no
# health check that fails on a slow 2-core CI machine; each test adds max_examples and a deadline
FUZZ = settings(
    derandomize=True,
    database=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


def scale() -> float:
    """``DUBAN_FUZZ_SCALE`` (default 1) multiplies every count and time budget: a longer run, e.g.
    ``DUBAN_FUZZ_SCALE=20`` overnight, tries more cases (the first ones are the same)."""
    return max(float(os.environ.get("DUBAN_FUZZ_SCALE", "1") or 1), 0.1)


def fuzz(max_examples: int, deadline_ms: int = 2000) -> settings:
    """Settings for one property: at most ``max_examples`` cases, each within ``deadline_ms``."""
    return settings(FUZZ, max_examples=max(1, round(max_examples * scale())), deadline=deadline_ms)
