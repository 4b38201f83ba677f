"""Reviews (督查) as store functions: the flow (flows/review.py), the web pages and the CLI call these.

A review asks every owner in a scope (a plan, a system, a lead department, a supervising leader's
area, or a list of tasks) to report, per task, what was done, the evidence, the problems and the
next steps by a reply-by date — the way a 推进会 has each lead department report.  Then the office
gives a verdict per task (达标 / 基本达标 / 需整改; 需整改 opens a follow-up milestone with an owner
and a date) and the review report (HTML + XLSX) goes to the leading group and the office.

Life of a review::

    open (requests out) --everyone answered, or the reply-by date passed--> waiting_verdicts
    waiting_verdicts --every task judged, then 完成评定并报送 (closing)--> closed (report written, sent)
    open / waiting_verdicts --cancel--> cancelled

All state lives here, in the store; every step is idempotent (ledger keys, status checks under a
row lock), so whoever advances a review — its Prefect flow run after a resume, the daily sweep, a
web answer, the CLI — may do so again without repeating anything.  Functions that take a session
never commit (the caller owns the transaction); those that take an engine run their own.  Prefect
is not imported here: duban.orchestration wakes flow runs and runs the deployment.

Modules: ``scope`` (scope, create), ``answers`` (requests, answers), ``verdicts`` (verdicts,
follow-ups, cancel), ``closing`` (the explicit 完成评定并报送 step),
``progress`` (start, daily tick, advance, deliver), ``queries`` (report data,
lists, a task's history), ``report`` (the report's HTML and XLSX).
"""
