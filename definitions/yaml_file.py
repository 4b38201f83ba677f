"""Read a plan's YAML file into a ``PlanFile``, with a locator for its problems."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from definitions.problems import Locator, PlanProblems, Problem
from definitions.schema import PlanFile

_PYDANTIC_MESSAGES = {
    "missing": "缺少必填字段",
    "string_type": "应为文字",
    "bool_parsing": "应为 true 或 false",
    "bool_type": "应为 true 或 false",
    "list_type": "应为列表",
    "dict_type": "应为键值对（映射）",
    "model_type": "应为键值对（映射）",
    "literal_error": "取值不正确",
    "int_type": "应为整数",
}


def _yaml_path(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"str", "date", "datetime", "int", "float", "list[MilestoneIn]", "OfficeMemberIn", "constrained-str"} or "[" in str(
            part
        ):
            continue  # union branch names that pydantic adds to the location
        else:
            out += f".{part}" if out else str(part)
    return out


def _fields_of(model: type, loc: tuple) -> list[str]:
    """The field names accepted at the place an ``extra_forbidden`` error points to."""
    current: Any = PlanFile
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            break
        ann = field.annotation
        args = list(getattr(ann, "__args__", ()) or ())
        while args:  # list[str | OfficeMemberIn]: the model inside a list of a union
            arg = args.pop(0)
            if hasattr(arg, "model_fields"):
                ann = arg
            else:
                args += list(getattr(arg, "__args__", ()) or ())
        if hasattr(ann, "model_fields"):
            current = ann
    return list(getattr(current, "model_fields", {}))


def read_yaml(path: Path) -> tuple[PlanFile, Locator]:
    source = path.name
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise PlanProblems(source, [Problem(source, "文件不是 UTF-8 编码，请另存为 UTF-8 后再导入")]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source} · 第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else source
        raise PlanProblems(source, [Problem(where, f"YAML 格式错误（{getattr(err, 'problem', err)}），请检查缩进、冒号和引号")]) from None
    if not isinstance(data, dict):
        raise PlanProblems(
            source, [Problem(source, "文件内容应为一个方案（含 plan、departments、people、systems 等字段），请参照 docs/plan-format.md")]
        )
    try:
        return PlanFile.model_validate(data), Locator(source)
    except ValidationError as err:
        problems = []
        seen: set[str] = set()
        errors = err.errors()
        # an office member written as a mapping: its errors are the mapping's, not "should be text"
        as_model = {tuple(e["loc"][: e["loc"].index("OfficeMemberIn")]) for e in errors if "OfficeMemberIn" in e["loc"]}
        for e in errors:
            if e["loc"][-1] == "constrained-str" and tuple(e["loc"][:-1]) in as_model:
                continue
            where = f"{source} · {_yaml_path(e['loc'])}"
            if e["type"] == "extra_forbidden":
                allowed = "、".join(_fields_of(PlanFile, tuple(e["loc"])))
                msg = f"不认识的字段“{e['loc'][-1]}”，可用的字段有：{allowed}"
            else:
                msg = _PYDANTIC_MESSAGES.get(e["type"], f"取值不正确（{e['msg']}）")
            if where + msg in seen:
                continue
            seen.add(where + msg)
            problems.append(Problem(where, msg))
        raise PlanProblems(source, problems) from None
