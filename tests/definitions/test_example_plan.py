"""The shipped example plan: its size, and YAML and XLSX template giving the same plan."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from definitions.export import write_workbook
from definitions.loaders import load_plan, read_plan_file
from definitions.schema import json_schema
from tests.conftest import EXAMPLE_XLSX, EXAMPLE_YAML

ROOT = Path(__file__).resolve().parents[2]


def test_example_plan_has_the_real_size_and_shape():
    d = load_plan(EXAMPLE_YAML)
    assert (len(d.systems), len(d.projects), len(d.tasks)) == (13, 44, 176)
    assert [s.name for s in d.systems][:10] == [
        "课程育人",
        "文化育人",
        "网络育人",
        "实践育人",
        "心理育人",
        "科研育人",
        "管理育人",
        "服务育人",
        "资助育人",
        "组织育人",
    ]
    assert Counter(t.schedule for t in d.tasks) == {"once": 142, "recurring": 21, "ongoing": 13}
    leads = {t.lead_department for t in d.tasks}
    assert {"党委宣传部", "教务处", "校团委", "信息化办公室", "学生工作处", "科研处", "党委组织部", "学校办公室", "后勤处"} <= leads
    assert all(p.email and p.email.endswith("@example.invalid") for p in d.people)
    assert d.warnings == ()


def test_yaml_and_xlsx_template_give_the_same_plan():
    assert load_plan(EXAMPLE_XLSX) == load_plan(EXAMPLE_YAML)


def test_xlsx_template_is_generated_from_the_yaml(tmp_path):
    """Regenerate with: python -m definitions.export definitions/plans/sanquan-yuren.yaml definitions/plans/sanquan-yuren.xlsx"""
    fresh = tmp_path / "fresh.xlsx"
    write_workbook(read_plan_file(EXAMPLE_YAML)[0], fresh)
    assert read_plan_file(fresh)[0] == read_plan_file(EXAMPLE_XLSX)[0]


def test_json_schema_file_is_current():
    """Regenerate with: python -m definitions.schema > definitions/plan.schema.json"""
    shipped = json.loads((ROOT / "definitions" / "plan.schema.json").read_text(encoding="utf-8"))
    assert shipped == json_schema()


def test_example_yaml_validates_against_the_json_schema():
    import jsonschema
    import yaml

    data = json.loads(json.dumps(yaml.safe_load(EXAMPLE_YAML.read_text(encoding="utf-8")), default=str))
    jsonschema.validate(data, json.loads((ROOT / "definitions" / "plan.schema.json").read_text(encoding="utf-8")))


def test_export_writes_people_text_as_text_never_as_formulas(tmp_path):
    from openpyxl import load_workbook

    from definitions.export import write_plan_file
    from tests.factories import small_plan, write_yaml

    texts = ['=HYPERLINK("http://evil.example","click")', "+1+1", "-1+1", "@SUM(1)", "\t=1", "\r=1"]
    plan = small_plan()
    tasks = [t for s in plan["systems"] for p in s["projects"] for t in p["tasks"]]
    for task, text in zip(tasks, texts, strict=False):
        task["statement"] = text
    plan["plan"]["organization"] = "=1+1"  # (leading tabs and line ends are trimmed at import)
    plan["people"][0]["title"] = "@职务"
    out = write_plan_file(read_plan_file(write_yaml(tmp_path / "p.yaml", plan))[0], tmp_path / "p.xlsx")
    wb = load_workbook(out)
    cells = [c for ws in wb.worksheets for row in ws.iter_rows() for c in row]
    assert [f"{c.parent.title}!{c.coordinate}" for c in cells if c.data_type == "f"] == []
    assert [wb["任务清单"].cell(r, 5).value for r in range(3, 7)] == texts[:4]
    assert wb["方案"]["B3"].value == "=1+1"
    assert wb["人员"]["C2"].value == "@职务"
