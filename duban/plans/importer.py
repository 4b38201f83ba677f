"""Import a definition file into the store in one transaction (or report and change nothing)."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Collection
from pathlib import Path

from sqlalchemy import Engine

from definitions.loaders import load_plan
from definitions.problems import PlanProblems, Problem
from duban.db import session_scope
from duban.institutions import InstitutionError
from duban.plans.diff import PlanDiff
from duban.plans.sync import apply_plan


class _DryRun(Exception):  # noqa: N818  a control-flow signal that rolls the transaction back, not an error
    """Raised inside the transaction to roll a dry run back."""


def import_plan(
    engine: Engine,
    path: str | Path,
    *,
    dry_run: bool = False,
    actor: str | None = None,
    plan_code: str | None = None,
    now: dt.datetime | None = None,
    accept: Collection[str] = (),
    accept_sheet: bool = False,
    tz: dt.tzinfo = dt.UTC,
    institution: str | None = None,
    institution_name: str | None = None,
) -> PlanDiff:
    """Validate ``path`` and apply it; raise ``PlanProblems`` (nothing written) when it is invalid.

    A dry run performs the very same changes inside the transaction and rolls them back, so the
    diff it returns is exactly what the real import would do.  ``accept`` (task codes) and
    ``accept_sheet`` apply changes that conflict with decisions taken in duban (``apply_plan``).
    ``institution`` names the institution (a code; ``duban.institutions.for_import``): an
    ``InstitutionError`` is raised as a ``PlanProblems`` naming the file.
    """
    path = Path(path)
    definition = load_plan(path, plan_code=plan_code)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    diff: PlanDiff | None = None
    try:
        with session_scope(engine) as session:
            diff = apply_plan(
                session,
                definition,
                actor=actor,
                source=path.name,
                sha256=digest,
                now=now,
                accept=accept,
                accept_sheet=accept_sheet,
                tz=tz,
                institution=institution,
                institution_name=institution_name,
            )
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    except InstitutionError as err:
        raise PlanProblems(path.name, [Problem(f"{path.name} · 单位", str(err))]) from None
    else:
        if engine.dialect.name == "postgresql" and (diff.added or diff.archived):
            # fresh statistics, or the planner guesses "1 row" for a large new plan and status
            # queries turn into nested loops (seconds instead of a fraction of one)
            with engine.connect() as conn:
                conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(
                    "ANALYZE tasks, milestones, projects, systems, departments, people"
                )
    if diff is None:  # apply_plan returns a diff before a dry run is rolled back
        raise RuntimeError(f"importing {path.name} produced no diff")
    return diff
