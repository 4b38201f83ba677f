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


class _Refused(yaml.constructor.ConstructorError):
    """A value the plan loader refuses, with its own message (not a YAML syntax error)."""


class _PlanLoader(yaml.SafeLoader):
    """YAML's safe loader, but a key written twice in one mapping is refused (the second ``code``
    would silently win and make another plan), and a date that does not exist is named."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for key_node, _value in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                if isinstance(key, (str, int, float, bool)) and key in seen:
                    why = f"键“{key}”重复（第 {seen[key]} 行已写过）：同一层中每个键只能写一次，请删除或合并其中一处"
                    raise _Refused(None, None, why, key_node.start_mark)
                if isinstance(key, (str, int, float, bool)):
                    seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError:
            raise _Refused(None, None, f"日期“{node.value}”不存在：请检查年、月、日（如 2 月没有 30 日）", node.start_mark) from None


_PlanLoader.add_constructor("tag:yaml.org,2002:timestamp", _PlanLoader.construct_yaml_timestamp)


def _load(path: Path) -> Any:
    """The file's data; each way it cannot be read is one ``PlanProblems``."""
    source = path.name
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=_PlanLoader)  # noqa: S506 - a SafeLoader
    except UnicodeDecodeError:
        raise PlanProblems(source, [Problem(source, "文件不是 UTF-8 编码，请另存为 UTF-8 后再导入")]) from None
    except RecursionError:
        raise PlanProblems(source, [Problem(source, "文件的嵌套层次过深，无法读取：方案文件只有几层缩进，请检查文件内容")]) from None
    except OSError as err:
        raise PlanProblems(source, [Problem(source, f"无法读取文件（{err.strerror or err}）")]) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{source} · 第 {mark.line + 1} 行第 {mark.column + 1} 列" if mark else source
        if isinstance(err, _Refused):
            raise PlanProblems(source, [Problem(where, str(err.problem))]) from None
        raise PlanProblems(source, [Problem(where, f"YAML 格式错误（{getattr(err, 'problem', err)}），请检查缩进、冒号和引号")]) from None


def read_yaml(path: Path) -> tuple[PlanFile, Locator]:
    source = path.name
    data = _load(path)
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
