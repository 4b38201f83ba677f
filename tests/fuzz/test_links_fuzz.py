"""The link verifier (duban/links.py) on tokens it did not issue: random text, issued tokens
mutated, truncated or extended, and payloads signed with another key.  Each is refused with
``LinkError`` (``verify``) or ``LinkRefused("invalid")`` (``resolve``, against the store) —
never accepted, never another exception."""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from duban.db import session_scope
from duban.link_tokens import LinkError, link_token, sign, verify
from duban.links import LinkRefused, resolve
from tests.conftest import PINNED_DAY
from tests.fuzz.counts import COUNTS, fuzz
from tests.web_helpers import SECRET, import_small, make_link

EXPIRES = dt.date(2027, 1, 31)
ISSUED = link_token(SECRET, 7, "progress", EXPIRES)
TOKEN_CHARS = string.ascii_letters + string.digits + "-_.=~%/+"


@st.composite
def mutated(draw, token: str = ISSUED) -> str:
    """``token`` changed the ways a copy and paste (or an attacker) changes it."""
    how = draw(st.sampled_from(["truncate", "replace", "insert", "delete", "append", "swap-parts", "case"]))
    i = draw(st.integers(0, len(token) - 1))
    ch = draw(st.sampled_from(TOKEN_CHARS))
    if how == "truncate":
        out = token[:i]
    elif how == "replace":
        out = token[:i] + ch + token[i + 1 :]
    elif how == "insert":
        out = token[:i] + ch + token[i:]
    elif how == "delete":
        out = token[:i] + token[i + 1 :]
    elif how == "append":
        out = token + draw(st.text(TOKEN_CHARS, min_size=1, max_size=40))
    elif how == "swap-parts":
        body, _, sig = token.partition(".")
        out = f"{sig}.{body}"
    else:
        out = token.swapcase()
    return out


def other_payload():
    return st.fixed_dictionaries(
        {"l": st.one_of(st.integers(), st.text(max_size=10), st.none()), "a": st.text(max_size=12), "e": st.text(max_size=12)}
    )


junk = st.one_of(st.text(max_size=300), st.text(TOKEN_CHARS, max_size=300), st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


@fuzz(1000)
@given(st.one_of(junk, mutated()))
@example("")
@example(".")
@example("a" * 100_000)
@example(ISSUED.split(".")[0] + ".")
def test_verify_refuses_what_it_did_not_issue(token):
    COUNTS["links: verify, tokens not issued"] += 1
    if token == ISSUED:
        return
    with pytest.raises(LinkError) as err:
        verify(SECRET, token, today=PINNED_DAY)
    assert str(err.value) == "链接无效或已被修改"


@fuzz(300)
@given(other_payload(), st.sampled_from(["", "x", SECRET[:-1], SECRET + "x"]))
def test_verify_refuses_another_keys_signature(payload, key):
    COUNTS["links: verify, other keys"] += 1
    with pytest.raises(LinkError, match="^链接无效或已被修改$"):
        verify(SECRET, sign(key, payload), today=PINNED_DAY)


@fuzz(300)
@given(other_payload())
@example({"l": 1, "a": "progress", "e": "2027-02-30"})
@example({"l": 1, "a": "progress", "e": None})
def test_verify_with_the_key_answers_a_payload_or_a_link_error(payload):
    """Even a payload signed with the right key (what a leaked key would allow) never raises
    anything but ``LinkError``: a malformed date or a missing field is a malformed token."""
    COUNTS["links: verify, odd payloads"] += 1
    try:
        got = verify(SECRET, sign(SECRET, payload), today=dt.date.min)
    except LinkError:
        return
    assert got == payload


@pytest.fixture
def issued(engine, tmp_path) -> str:
    """A real link of the small plan, issued as the sweep would."""
    import_small(engine, tmp_path)
    return make_link(engine, "教务处处长", "progress", "1")


@fuzz(80, deadline_ms=5000)
@given(data=st.data())
def test_resolve_refuses_what_it_did_not_issue(engine, issued, data):
    """Against the store (SQLite and PostgreSQL): the issued token resolves, every other refused."""
    token = data.draw(st.one_of(junk, mutated(issued)), label="token")
    COUNTS["links: resolve, tokens not issued"] += 1
    with session_scope(engine) as s:
        if token == issued:
            assert resolve(s, token, secret=SECRET, today=PINNED_DAY).person.name == "教务处处长"
            return
        with pytest.raises(LinkRefused) as err:
            resolve(s, token, secret=SECRET, today=PINNED_DAY)
    assert (err.value.reason, err.value.link_id) == ("invalid", None)


@pytest.mark.parametrize("expires", ["2027-02-30", None, 20270131, ["2027-01-31"]])
def test_a_signed_payload_with_a_malformed_date_is_a_link_error(expires):
    """Found by the fuzzing: ``verify`` raised a bare ValueError or TypeError instead of its own
    ``LinkError`` (every caller caught the broader errors itself, so no page showed a traceback;
    only a payload signed with the key can carry such a date)."""
    with pytest.raises(LinkError, match="^链接无效或已被修改$"):
        verify(SECRET, sign(SECRET, {"l": 1, "a": "progress", "e": expires}), today=dt.date.min)
