"""duban's vocabulary: every state, kind and role as a ``StrEnum``, with its Chinese label.

The values are the strings the store has always held (a member *is* its value: ``MilestoneState.DONE
== "done"``), so the database needs no migration and SQL, JSON and templates see plain text. Code
uses the members, never the literals; the labels are what people read (pages, messages, reports).
"""

from __future__ import annotations

from enum import StrEnum


class _Labelled(StrEnum):
    """A ``StrEnum`` whose members carry a Chinese label (``_LABELS`` set after the class)."""

    @property
    def label(self) -> str:
        # keyed by class and value: members of different enums with one value (MilestoneState.DONE,
        # LinkAction.DONE) are equal and hash alike, so a dict keyed by members would mix them up
        return _LABELS.get((type(self), self.value), self.value)

    @classmethod
    def label_of(cls, value: str) -> str:
        """The label of a stored value (the value itself when it is not a member)."""
        try:
            return cls(value).label
        except ValueError:
            return value


class MilestoneState(_Labelled):
    """The life of a milestone (DESIGN.md, "Life of a milestone")."""

    ASSIGNED = "assigned"  # 待签收
    IN_PROGRESS = "in_progress"  # 办理中
    SUBMITTED = "submitted"  # 待审核
    DONE = "done"  # 已办结
    ARCHIVED = "archived"  # 已归档


OPEN_STATES = (MilestoneState.ASSIGNED, MilestoneState.IN_PROGRESS)


class MilestoneOrigin(StrEnum):
    """Where a milestone comes from (a re-import keeps what was decided in duban)."""

    PLAN = "plan"  # the plan file's 路线图 / 时间表
    REVIEW = "review"  # a 需整改 follow-up step opened by a review verdict
    OFFICE = "office"  # added by the office in duban


class Light(_Labelled):
    """A task's red/yellow/green light (红黄绿灯): derived, never stored."""

    RED = "red"
    YELLOW = "yellow"
    GREEN = "green"


class LedgerStatus(StrEnum):
    """A notification, digest or delivery on its way out."""

    PENDING = "pending"  # decided, not yet in a digest / not yet sent
    QUEUED = "queued"  # in a digest that is waiting for delivery
    SENDING = "sending"  # a worker holds it
    SENT = "sent"
    FAILED = "failed"


class RequestKind(_Labelled):
    """What an owner asks a coordinator to decide."""

    COMPLETION = "completion"  # 提交办结 → 办结 / 退回
    EXTENSION = "extension"  # 延期申请 → 批准 / 不予批准


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    RETURNED = "returned"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class MessageKind(StrEnum):
    """What a ledger item (one line of a digest) is about."""

    # announcement (duban.announce)
    ASSIGNMENT = "assignment"  # 任务下达 → owner: the task book, its timetable and links
    # deadline rules (duban.rules.deadlines)
    ACK = "ack"  # 签收提醒 → owner
    DUE = "due"  # 到期提醒 → owner
    OVERDUE = "overdue"  # 逾期提醒 → owner
    REPORT_DUE = "report_due"  # 反馈提醒 → owner
    REPORT_OVERDUE = "report_overdue"  # 催报 → owner
    ESCALATION = "escalation"  # 督办 → head (1), supervising leader (2), office (3)
    APPROVAL_WAITING = "approval_waiting"  # 待审核提醒 → reviewers
    # actions from links (duban.actions)
    APPROVAL = "approval"  # to reviewers: a completion or an extension waits
    APPROVED = "approved"  # to the owner: the completion was approved (办结)
    RETURNED = "returned"  # to the owner: the completion was returned, with the reason
    EXTENSION_DECIDED = "extension_decided"  # to the owner: approved (new date) or refused
    RELINK = "relink"  # to the holder of an expired or used link: a fresh one
    # reviews (duban.rules.reviews)
    REVIEW_REQUEST = "review_request"  # 督查通知 → owner
    REVIEW_REMINDER = "review_reminder"  # 督查填报提醒 → owner, before the reply-by date
    REVIEW_OVERDUE = "review_overdue"  # 督查催报 → owner, after it
    REVIEW_ESCALATION = "review_escalation"  # 督查督办 → head (1), supervising leader (2), office (3)
    REVIEW_VERDICTS = "review_verdicts"  # → the office: answers are in, give the verdicts
    REVIEW_FOLLOW_UP = "review_follow_up"  # → the follow-up owner: 整改 required, a new milestone
    REVIEW_REPORT = "review_report"  # → the leading group and the office: the report is ready
    REVIEW_CANCELLED = "review_cancelled"  # → owners still asked: no need to answer any more
    # the sweep itself
    UNREACHABLE = "unreachable"  # → the office: somebody has no working channel
    BULLETIN = "bulletin"  # 督办通报 → the leading group
    TEST = "test"  # `duban notify test`
    # the office and leaders on the dashboard's task page (duban.office_edits)
    INSTRUCTION = "instruction"  # 领导批示 → owner
    URGED = "urged"  # 催办 → owner, out of the sweep's cycle


REVIEW_MESSAGE_KINDS = frozenset(k for k in MessageKind if k.startswith("review_"))


class EventKind(StrEnum):
    """A task's history (the ``events`` table)."""

    ACKNOWLEDGED = "acknowledged"
    PROGRESS_REPORTED = "progress_reported"
    COMPLETION_SUBMITTED = "completion_submitted"
    MILESTONE_DONE = "milestone_done"  # submitted where approval is off
    COMPLETION_APPROVED = "completion_approved"
    COMPLETION_RETURNED = "completion_returned"
    EXTENSION_REQUESTED = "extension_requested"
    EXTENSION_APPROVED = "extension_approved"
    EXTENSION_REFUSED = "extension_refused"
    LINK_RENEWAL = "link_renewal_requested"
    REVIEW_ANSWERED = "review_answered"
    REVIEW_JUDGED = "review_judged"
    REVIEW_CLOSED = "review_closed"  # 完成评定并报送 (duban.reviews.closing)
    TASK_ANNOUNCED = "task_announced"  # 任务下达 (duban.announce)
    # written by plan synchronisation (duban.plans): what an import changed
    PLAN_CREATED = "plan_created"
    PLAN_UPDATED = "plan_updated"
    TASK_CREATED = "task_created"
    TASK_UPDATED = "task_updated"
    TASK_RESTORED = "task_restored"
    TASK_ARCHIVED = "task_archived"
    OWNER_CHANGED = "owner_changed"
    MILESTONE_ADDED = "milestone_added"
    MILESTONE_DUE_CHANGED = "milestone_due_changed"
    MILESTONE_RESTORED = "milestone_restored"
    MILESTONE_ARCHIVED = "milestone_archived"
    # the dashboard's task page (duban.office_edits): decisions a re-import holds back as conflicts
    INSTRUCTION = "instruction"  # 领导批示
    URGED = "urged"  # 催办
    OFFICE_REASSIGNED = "office_reassigned"  # the office handed the task to another owner
    OFFICE_DUE_MOVED = "office_due_moved"  # the office moved a milestone's date
    OFFICE_ARCHIVED = "office_archived"  # the office archived the task


class LinkAction(_Labelled):
    """What a signed link lets its holder do (duban.links)."""

    ACK = "ack"
    PROGRESS = "progress"
    DONE = "done"
    EXTEND = "extend"
    VIEW = "view"
    REVIEW = "review"  # a coordinator: one request (completion or extension)
    QUEUE = "queue"  # a coordinator: everything pending in the plan (no task)
    REVIEW_ANSWER = "review_answer"  # an owner: answer one task of a review; editable until judged
    REVIEW_VERDICT = "review_verdict"  # a coordinator: the review's answers and the verdict form
    REVIEW_REPORT = "review_report"  # the leading group and the office: the review's report
    DASHBOARD = "dashboard"  # a read-only dashboard link (duban.accounts)
    MINE = "mine"  # a person: their own page, every task they hold (我的督办, /me/<token>; no task)


OWNER_ACTIONS = frozenset({LinkAction.ACK, LinkAction.PROGRESS, LinkAction.DONE, LinkAction.EXTEND})
REVIEWER_ACTIONS = frozenset({LinkAction.REVIEW, LinkAction.QUEUE, LinkAction.REVIEW_VERDICT})
REUSABLE_ACTIONS = frozenset({LinkAction.VIEW, LinkAction.QUEUE, LinkAction.REVIEW_VERDICT, LinkAction.REVIEW_REPORT, LinkAction.MINE})


class PlanRoleKind(StrEnum):
    """A person's standing role in a plan (the ``plan_roles`` table)."""

    LEADING_GROUP = "leading_group"  # 领导小组
    OFFICE = "office"  # 领导小组办公室 (coordinators, reviewers)


class Schedule(StrEnum):
    """How a task runs (完成时限): by a date, every period, or for the whole plan."""

    ONCE = "once"
    RECURRING = "recurring"
    ONGOING = "ongoing"


class Period(StrEnum):
    """How often a recurring or ongoing task reports (反馈周期)."""

    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    SEMESTER = "semester"
    YEAR = "year"


class BulletinKind(_Labelled):
    """A 督办通报's rhythm."""

    WEEK = "week"
    MONTH = "month"


class BulletinEvery(StrEnum):
    """Which 督办通报 a plan issues (``plans.bulletin_every``)."""

    WEEK = "week"
    MONTH = "month"
    BOTH = "both"


class Audience(StrEnum):
    """Who a digest is addressed to."""

    PERSON = "person"
    DEPARTMENT = "department"  # a department's group chat
    LEADING_GROUP = "leading_group"
    OFFICE = "office"


class ReviewState(_Labelled):
    OPEN = "open"  # requests out, answers awaited
    WAITING = "waiting_verdicts"  # everyone answered or the reply-by date passed: the office judges
    CLOSED = "closed"  # every task judged, report written and sent
    CANCELLED = "cancelled"


class ItemState(_Labelled):
    """One task of a review."""

    REQUESTED = "requested"
    ANSWERED = "answered"
    JUDGED = "judged"


class Verdict(StrEnum):
    """A review's verdict on one task (the value is what the office writes and reads)."""

    PASS = "达标"  # noqa: S105  a verdict, not a password
    MOSTLY = "基本达标"
    FIX = "需整改"


class ScopeKind(_Labelled):
    """What a review covers."""

    PLAN = "plan"
    SYSTEM = "system"
    DEPARTMENT = "department"
    SUPERVISOR = "supervisor"
    TASKS = "tasks"


class SnapshotScope(StrEnum):
    """What a roll-up snapshot row sums up (the trend)."""

    PLAN = "plan"
    SYSTEM = "system"
    DEPARTMENT = "department"


class AccountRole(_Labelled):
    """A dashboard account."""

    OFFICE = "office"
    LEADER = "leader"
    VIEWER = "viewer"


class EvidenceKind(StrEnum):
    URL = "url"
    FILE = "file"


# (member, label) pairs, not a dict: members of different enums with one value are equal keys


class SignInMethod(_Labelled):
    """How a person was identified (``person_sessions.method``): the institution's sign-in, or a link."""

    CAS = "cas"  # 统一身份认证 (CAS)
    OIDC = "oidc"  # 统一身份认证 (OAuth2 / OpenID Connect)
    WECOM = "wecom"  # 企业微信 OAuth (inside the WeCom app)
    DINGTALK = "dingtalk"  # 钉钉 OAuth (inside DingTalk)
    LINK = "link"  # the person's own signed link


class SsoMatch(StrEnum):
    """Which column of the 人员 sheet the institution's account (CAS / OIDC) is matched with."""

    STAFF_NO = "staff_no"  # 工号
    EMAIL = "email"
    MOBILE = "mobile"


class SsoAccountMatch(StrEnum):
    """How a signed-in identity finds its dashboard account."""

    PERSON = "person"  # the account linked to the person (``duban account add --person``)
    LOGIN = "login"  # the account whose login equals the institution's account


class SweepOutcome(_Labelled):
    """How an institution's daily sweep ended (the daily sweep's summary and its artifacts)."""

    DONE = "done"
    SKIPPED = "skipped"  # not a working day in the institution's calendar
    FAILED = "failed"  # an error after the retries, or its flow run did not finish


_LABEL_LIST: tuple[tuple[StrEnum, str], ...] = (
    (MilestoneState.ASSIGNED, "待签收"),
    (MilestoneState.IN_PROGRESS, "办理中"),
    (MilestoneState.SUBMITTED, "待审核"),
    (MilestoneState.DONE, "已办结"),
    (MilestoneState.ARCHIVED, "已归档"),
    (Light.RED, "红灯"),
    (Light.YELLOW, "黄灯"),
    (Light.GREEN, "绿灯"),
    (RequestKind.COMPLETION, "办结申请"),
    (RequestKind.EXTENSION, "延期申请"),
    (LinkAction.ACK, "签收"),
    (LinkAction.PROGRESS, "反馈进展"),
    (LinkAction.DONE, "提交办结"),
    (LinkAction.EXTEND, "申请延期"),
    (LinkAction.VIEW, "查看任务"),
    (LinkAction.REVIEW, "审核"),
    (LinkAction.QUEUE, "待审核事项"),
    (LinkAction.REVIEW_ANSWER, "填报督查情况"),
    (LinkAction.REVIEW_VERDICT, "督查评定"),
    (LinkAction.REVIEW_REPORT, "查看督查报告"),
    (LinkAction.DASHBOARD, "看板"),
    (LinkAction.MINE, "我的督办"),
    (BulletinKind.WEEK, "周通报"),
    (BulletinKind.MONTH, "月通报"),
    (ReviewState.OPEN, "填报中"),
    (ReviewState.WAITING, "待评定"),
    (ReviewState.CLOSED, "已完成"),
    (ReviewState.CANCELLED, "已撤销"),
    (ItemState.REQUESTED, "待填报"),
    (ItemState.ANSWERED, "已填报"),
    (ItemState.JUDGED, "已评定"),
    (ScopeKind.PLAN, "全部任务"),
    (ScopeKind.SYSTEM, "育人体系"),
    (ScopeKind.DEPARTMENT, "牵头单位"),
    (ScopeKind.SUPERVISOR, "分管校领导"),
    (ScopeKind.TASKS, "指定任务"),
    (AccountRole.OFFICE, "领导小组办公室"),
    (AccountRole.LEADER, "领导"),
    (AccountRole.VIEWER, "只读"),
    (SignInMethod.CAS, "统一身份认证"),
    (SignInMethod.OIDC, "统一身份认证"),
    (SignInMethod.WECOM, "企业微信"),
    (SignInMethod.DINGTALK, "钉钉"),
    (SignInMethod.LINK, "个人链接"),
    (SweepOutcome.DONE, "已完成"),
    (SweepOutcome.SKIPPED, "非工作日，未检查"),
    (SweepOutcome.FAILED, "未完成"),
)
_LABELS: dict[tuple[type, str], str] = {(type(m), m.value): text for m, text in _LABEL_LIST}
