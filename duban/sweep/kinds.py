"""What the sweep knows about each message kind, in one table: where its items come in a digest
or a preview, what a preview (``duban check --dry-run``) and an escalation's history call it, and whether it
is a notice about the system itself (its line is not about a task)."""

from __future__ import annotations

from dataclasses import dataclass

from duban.vocabulary import MessageKind


@dataclass(frozen=True)
class KindFacts:
    order: int = 9  # position in a digest and a preview (lower first)
    label: str | None = None  # its name in a preview and in an escalation's history (None: the kind itself)
    notice: bool = False  # a notice about the system itself, not about a task


KINDS: dict[str, KindFacts] = {
    MessageKind.ASSIGNMENT: KindFacts(0, "任务下达"),
    MessageKind.OVERDUE: KindFacts(1, "逾期提醒"),
    MessageKind.REPORT_OVERDUE: KindFacts(2, "催报"),
    MessageKind.ESCALATION: KindFacts(3, "督办"),
    MessageKind.DUE: KindFacts(4, "到期提醒"),
    MessageKind.REPORT_DUE: KindFacts(5, "反馈提醒"),
    MessageKind.ACK: KindFacts(6, "签收提醒"),
    MessageKind.APPROVAL: KindFacts(label="待审核"),
    MessageKind.APPROVAL_WAITING: KindFacts(label="待审核提醒"),
    MessageKind.APPROVED: KindFacts(label="办结审核通过"),
    MessageKind.RETURNED: KindFacts(label="办结退回"),
    MessageKind.EXTENSION_DECIDED: KindFacts(label="延期审批结果"),
    MessageKind.RELINK: KindFacts(label="新链接"),
    MessageKind.REVIEW_REQUEST: KindFacts(label="督查通知"),
    MessageKind.REVIEW_REMINDER: KindFacts(label="督查填报提醒"),
    MessageKind.REVIEW_OVERDUE: KindFacts(label="督查催报"),
    MessageKind.REVIEW_ESCALATION: KindFacts(label="督查督办"),
    MessageKind.REVIEW_FOLLOW_UP: KindFacts(label="督查整改"),
    MessageKind.UNREACHABLE: KindFacts(notice=True),
    MessageKind.INSTRUCTION: KindFacts(0, "领导批示"),
    MessageKind.URGED: KindFacts(1, "催办"),
}
_OTHER = KindFacts()


def facts(kind: str) -> KindFacts:
    return KINDS.get(kind, _OTHER)
