"""What the sweep knows about each message kind, in one table: where its items come in a digest
or a preview, how an escalation's history names an earlier message of the kind, and whether it
is a notice about the system itself (its line is not about a task)."""

from __future__ import annotations

from dataclasses import dataclass

from duban.vocabulary import MessageKind


@dataclass(frozen=True)
class KindFacts:
    order: int = 9  # position in a digest and a preview (lower first)
    history: str | None = None  # the name in an escalation's history (None: the kind itself)
    notice: bool = False  # a notice about the system itself, not about a task


KINDS: dict[str, KindFacts] = {
    MessageKind.OVERDUE: KindFacts(0, "逾期提醒"),
    MessageKind.REPORT_OVERDUE: KindFacts(1, "催报"),
    MessageKind.ESCALATION: KindFacts(2),
    MessageKind.DUE: KindFacts(3, "到期提醒"),
    MessageKind.REPORT_DUE: KindFacts(4, "反馈提醒"),
    MessageKind.ACK: KindFacts(5, "签收提醒"),
    MessageKind.UNREACHABLE: KindFacts(notice=True),
}
_OTHER = KindFacts()


def facts(kind: str) -> KindFacts:
    return KINDS.get(kind, _OTHER)
