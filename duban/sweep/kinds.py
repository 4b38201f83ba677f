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
    MessageKind.OVERDUE: KindFacts(0, "逾期提醒"),
    MessageKind.REPORT_OVERDUE: KindFacts(1, "催报"),
    MessageKind.ESCALATION: KindFacts(2, "督办"),
    MessageKind.DUE: KindFacts(3, "到期提醒"),
    MessageKind.REPORT_DUE: KindFacts(4, "反馈提醒"),
    MessageKind.ASSIGNMENT: KindFacts(5, "任务下达"),
    MessageKind.ACK: KindFacts(6, "签收提醒"),
    MessageKind.UNREACHABLE: KindFacts(notice=True),
}
_OTHER = KindFacts()


def facts(kind: str) -> KindFacts:
    return KINDS.get(kind, _OTHER)
