"""Problems found in a definition file, each naming where it is and what would be accepted."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    where: str  # e.g. "plan.xlsx · 工作表「任务清单」第 12 行 · 「完成时限」列"
    message: str

    def __str__(self) -> str:
        return f"{self.where}：{self.message}"


class PlanProblems(Exception):  # noqa: N818  public name (cli, flows, the importer and tests catch it); renaming is out of scope
    """Every problem found in one definition file; nothing has been written."""

    def __init__(self, source: str, problems: list[Problem]):
        self.source = source
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        head = f"文件 {self.source} 有 {len(self.problems)} 处问题，未导入任何内容，请修改后重新导入："
        return "\n".join([head, *(f"  {i}. {p}" for i, p in enumerate(self.problems, 1))])


class Locator:
    """Turns a position in a plan file into the words a user finds it by.

    The YAML loader uses this one (paths such as ``systems[0].projects[1].tasks[2].deadline``);
    the spreadsheet loader subclasses it to name sheet, row and column.
    """

    def __init__(self, source: str):
        self.source = source
        self.notes: list[str] = []  # what the reader left out on purpose, shown as warnings (a hidden sheet)

    def plan(self, field: str) -> str:
        return f"{self.source} · plan.{field}"

    def department(self, index: int, field: str) -> str:
        return f"{self.source} · departments[{index}].{field}"

    def office(self, index: int, field: str, name: str | None = None) -> str:
        """An office member's line (督办条线); ``name`` lets a spreadsheet find the member's row."""
        return f"{self.source} · plan.office[{index}].{field}"

    def person(self, index: int, field: str) -> str:
        return f"{self.source} · people[{index}].{field}"

    def system(self, si: int, field: str) -> str:
        return f"{self.source} · systems[{si}].{field}"

    def project(self, si: int, pi: int, field: str) -> str:
        return f"{self.source} · systems[{si}].projects[{pi}].{field}"

    def task(self, si: int, pi: int, ti: int, field: str, code: str | None = None) -> str:
        label = f"（任务 {code}）" if code else ""
        return f"{self.source} · systems[{si}].projects[{pi}].tasks[{ti}].{field}{label}"
