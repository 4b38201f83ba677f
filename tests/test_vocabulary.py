"""The vocabulary: enum values are the stored strings, and each member has its own label."""

from __future__ import annotations

import pytest

from duban.vocabulary import (
    AccountRole,
    ItemState,
    LinkAction,
    MessageKind,
    MilestoneState,
    RequestKind,
    ReviewState,
    ScopeKind,
    SignInMethod,
)


@pytest.mark.parametrize(
    ("member", "label"),
    [
        # one value in two enums: each keeps its own label
        (MilestoneState.DONE, "已办结"),
        (LinkAction.DONE, "提交办结"),
        (MilestoneState.ASSIGNED, "待签收"),
        (LinkAction.ACK, "签收"),
        (ReviewState.WAITING, "待评定"),
        (ItemState.JUDGED, "已评定"),
        (RequestKind.EXTENSION, "延期申请"),
        (ScopeKind.SUPERVISOR, "分管校领导"),
        (AccountRole.VIEWER, "只读"),
        (SignInMethod.CAS, "统一身份认证"),
        (SignInMethod.WECOM, "企业微信"),
    ],
)
def test_each_member_has_its_own_label(member, label):
    assert member.label == label


def test_members_are_the_stored_strings():
    assert MilestoneState.IN_PROGRESS == "in_progress"
    assert f"{MessageKind.ESCALATION}:m1" == "escalation:m1"
    assert MilestoneState("submitted") is MilestoneState.SUBMITTED


@pytest.mark.parametrize(("value", "label"), [("waiting_verdicts", "待评定"), ("unknown", "unknown")])
def test_label_of_a_stored_value(value, label):
    assert ReviewState.label_of(value) == label
