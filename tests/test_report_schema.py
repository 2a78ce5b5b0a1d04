"""report.json against its JSON Schema (pellucid/reports/report.schema.json).

Every report pellucid writes validates; a hand-edited report.json that does not (a string where a
number belongs, a list that is an object, a missing key, a NaN literal, an index past the end of
its list, an unknown operator, ...) is refused by ``pellucid report`` and ``pellucid diff`` with
exit code 2 and one line on stderr naming the file and the JSON path, and nothing is written.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import pellucid
from pellucid.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
CARD = 'model_name = "credit scorer"\npurpose = "decide loans"\n'


@pytest.fixture(scope="module")
def demo(demo_report):
    """A real report (the session's demo run): its path and its payload."""
    path = demo_report / "report.json"
    return path, json.loads(path.read_text(encoding="utf-8"))


def _numeric_condition(p):
    """(surrogate, rule, condition) of the first numeric condition in the report."""
    for i, s in enumerate(p["surrogates"]):
        for j, r in enumerate(s["rules"]):
            for k, c in enumerate(r["conditions"]):
                if c["op"] in ("<=", "<", ">", ">="):
                    return i, j, k
    raise AssertionError("the demo report has no numeric condition")


def _condition(p):
    i, j, k = _numeric_condition(p)
    return p["surrogates"][i]["rules"][j]["conditions"][k], f"surrogates[{i}].rules[{j}].conditions[{k}]"


def _not_additive(p):
    return next(i for i, s in enumerate(p["surrogates"]) if s["additive"] is None)


def _set(path_value):
    """An edit that sets one value: ``lambda p: (container, key, value)``."""
    def edit(p):
        container, key, value = path_value(p)
        container[key] = value
    return edit


def _delete(where):
    def edit(p):
        container, key = where(p)
        del container[key]
    return edit


# Each: (id, edit of the payload or of its text, what the error line must name).
VARIANTS = [
    ("string-for-number", _set(lambda p: (p["surrogates"][0]["fidelity"], "agreement", "high")),
     ["surrogates[0].fidelity.agreement", '"high"']),
    ("rules-not-a-list", _set(lambda p: (p["surrogates"][0], "rules", {"first": p["surrogates"][0]["rules"][0]})),
     ["surrogates[0].rules", "list"]),
    ("missing-top-level-key", _delete(lambda p: (p, "distillation")), ["distillation", "missing"]),
    ("missing-nested-key", _delete(lambda p: (p["surrogates"][1], "fidelity")), ["surrogates[1]", "fidelity", "missing"]),
    ("surrogates-an-object", _set(lambda p: (p, "surrogates", {"0": p["surrogates"][0]})), ["surrogates", "list"]),
    ("nan-literal", "nan", ["surrogates[0].fidelity.agreement", "NaN"]),
    ("infinity-literal", "infinity", ["conditions", "Infinity"]),
    ("recommended-out-of-range", _set(lambda p: (p, "recommended", len(p["surrogates"]))), ["recommended"]),
    ("recommended-negative", _set(lambda p: (p, "recommended", -1)), ["recommended"]),
    ("recommended-not-whole", _set(lambda p: (p, "recommended", 1.0)), ["recommended"]),
    ("linear-view-out-of-range", _set(lambda p: (p, "linear_view", 99)), ["linear_view", "99"]),
    ("linear-view-not-additive", _set(lambda p: (p, "linear_view", _not_additive(p))), ["linear_view", "additive"]),
    ("frontier-selected-out-of-range", _set(lambda p: (p["frontier"], "selected", len(p["frontier"]["entries"]))),
     ["frontier.selected"]),
    ("pairing-index-out-of-range", _set(lambda p: (p["attributions"]["pairing"][0], "surrogate_index", 40)),
     ["attributions.pairing[0].surrogate_index"]),
    ("unknown-op", _set(lambda p: (_condition(p)[0], "op", "==")), ["conditions", ".op", '"=="']),
    ("threshold-not-a-number", _set(lambda p: (_condition(p)[0], "value", "abc")), ["conditions", ".value", '"abc"']),
    ("threshold-null-in-2.0", _set(lambda p: (_condition(p)[0], "value", None)), ["conditions", ".value", "null"]),
    ("share-above-one", _set(lambda p: (p["surrogates"][0]["rules"][0], "coverage", 1.7)),
     ["surrogates[0].rules[0].coverage", "1.7"]),
    ("interval-of-three", _set(lambda p: (p["surrogates"][0]["fidelity"], "agreement_ci", [0.1, 0.2, 0.3])),
     ["surrogates[0].fidelity.agreement_ci"]),
    ("content-hash-not-hex", _set(lambda p: (p, "content_sha256", "not a digest")), ["content_sha256"]),
    ("local-rows-an-object", _set(lambda p: (p["local"], "rows", {})), ["local.rows", "list"]),
    ("card-field-a-number", _set(lambda p: (p, "card", {"fields": {"purpose": 42}, "extra": {}})), ["card.fields.purpose", "42"]),
    ("limitations-text", _set(lambda p: (p, "limitations", "none")), ["limitations"]),
    ("determinism-text", _set(lambda p: (p["model"], "determinism", "yes")), ["model.determinism", '"yes"']),
    ("inputs-columns-a-number", _set(lambda p: (p["model"]["inputs"], "columns", 7)), ["model.inputs.columns", "7"]),
    ("top-level-list", "list", ["not a pellucid report"]),
    ("truncated", "truncated", ["not JSON"]),
]
IDS = [v[0] for v in VARIANTS]


def _bad_text(payload: dict, edit) -> str:
    p = copy.deepcopy(payload)
    if edit == "nan":
        p["surrogates"][0]["fidelity"]["agreement"] = "@@NAN@@"
        return json.dumps(p, indent=2).replace('"@@NAN@@"', "NaN")
    if edit == "infinity":
        _condition(p)[0]["value"] = "@@INF@@"
        return json.dumps(p, indent=2).replace('"@@INF@@"', "-Infinity")
    if edit == "list":
        return "[1, 2]"
    if edit == "truncated":
        return json.dumps(p, indent=2)[:2000]
    edit(p)
    return json.dumps(p, indent=2)


@pytest.fixture
def bad(request, demo, tmp_path):
    """The demo's report.json hand-edited as the variant says, in a folder of its own."""
    name, edit, expected = request.param
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "report.json").write_text(_bad_text(demo[1], edit), encoding="utf-8")
    return folder / "report.json", expected


def _one_clear_line(err: str, expected: list[str], path: Path) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pellucid: error: ") and "Traceback" not in err
    assert str(path) in lines[0] or path.name in lines[0]
    for part in expected:
        assert part in lines[0], (part, lines[0])


def _nothing_in(folder: Path) -> None:
    assert not folder.exists() or not any(folder.iterdir()), sorted(folder.iterdir())


@pytest.mark.parametrize("bad", VARIANTS, ids=IDS, indirect=True)
@pytest.mark.parametrize("with_card", [False, True], ids=["page", "card"])
def test_report_refuses_a_bad_file_in_one_line_and_writes_nothing(bad, with_card, tmp_path, capfd):
    path, expected = bad
    out = tmp_path / "out"
    argv = ["report", str(path), "--out", str(out)]
    if with_card:
        card = tmp_path / "card.toml"
        card.write_text(CARD)
        argv += ["--card", str(card)]
    code = main(argv)
    got, err = capfd.readouterr()
    assert code == 2 and got == ""
    _one_clear_line(err, expected, path)
    _nothing_in(out)
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]  # nothing beside it either


@pytest.mark.parametrize("bad", VARIANTS, ids=IDS, indirect=True)
def test_diff_refuses_a_bad_file_in_one_line_and_writes_nothing(bad, demo, tmp_path, capfd):
    path, expected = bad
    for argv in (["diff", str(demo[0]), str(path)], ["diff", str(path), str(demo[0]), "--out", str(tmp_path / "d" / "diff.html")]):
        code = main(argv)
        got, err = capfd.readouterr()
        assert code == 2 and got == ""
        _one_clear_line(err, expected, path)
    _nothing_in(tmp_path / "d")


# The real command in a process of its own: what a user sees, stderr included. A few variants
# (each process imports pellucid and torch, several seconds); the table above covers the rest.
PROCESS_VARIANTS = [v for v in VARIANTS if v[0] in ("string-for-number", "nan-literal", "missing-nested-key", "recommended-out-of-range")]
DIFF_IN_A_PROCESS = ("string-for-number", "nan-literal")


@pytest.mark.parametrize("bad", PROCESS_VARIANTS, ids=[v[0] for v in PROCESS_VARIANTS], indirect=True)
def test_the_command_in_a_process_prints_one_line(bad, demo, tmp_path, request):
    path, expected = bad
    bad_id = request.node.callspec.id
    out = tmp_path / "out"
    card = tmp_path / "card.toml"
    card.write_text(CARD)
    commands = [["report", str(path), "--out", str(out), "--card", str(card)]]
    if bad_id in DIFF_IN_A_PROCESS:
        commands.append(["diff", str(demo[0]), str(path)])
    # The pellucid these tests import, whatever is installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(pellucid.__file__).parent.parent), os.environ.get("PYTHONPATH", "")])}
    for argv in commands:
        proc = subprocess.run([sys.executable, "-m", "pellucid", *argv], capture_output=True, text=True, cwd=tmp_path,
                              env=env, timeout=300)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == ""
        _one_clear_line(proc.stderr, expected, path)
    _nothing_in(out)


# ---------------------------------------------------------------------------- the schema itself
def _schema():
    from pellucid.reports import report_schema

    return report_schema()


def test_the_schema_is_a_valid_draft_2020_12_schema():
    import jsonschema

    schema = _schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_the_published_copy_is_the_packaged_schema():
    packaged = ROOT / "pellucid" / "reports" / "report.schema.json"
    assert (ROOT / "docs" / "report.schema.json").read_bytes() == packaged.read_bytes()
    assert "(report.schema.json)" in (ROOT / "docs" / "report-json.md").read_text(encoding="utf-8")


def test_the_schema_is_shipped_as_package_data():
    conf = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "report.schema.json" in conf["tool"]["setuptools"]["package-data"]["pellucid.reports"]
    assert any(d.startswith("jsonschema") for d in conf["project"]["dependencies"])


def test_the_demo_report_validates(demo):
    import jsonschema

    from pellucid.reports import validate_report

    payload = demo[1]
    jsonschema.Draft202012Validator(_schema()).validate(payload)  # any 2020-12 validator agrees
    validate_report(payload, "report.json")


def test_every_report_the_run_writes_is_valid_json_for_the_schema(demo):
    """Every key the page reads is described: the surrogate entries, rules and conditions, with the
    types the schema states (a spot check of the documented keys against the real report)."""
    schema = _schema()
    surrogate = schema["$defs"]["surrogate"]["properties"]
    assert set(demo[1]["surrogates"][0]) <= set(surrogate)
    assert set(demo[1]) <= set(schema["$defs"]["tabular_report"]["properties"]) | {"schema_version"}
    rule = schema["$defs"]["rule"]["properties"]
    for s in demo[1]["surrogates"]:
        for r in s["rules"] + [s["default"]]:
            assert set(r) <= set(rule), set(r) - set(rule)


# ---------------------------------------------------------------------------- messages
def test_the_message_names_the_file_and_the_json_path(demo):
    from pellucid.errors import DataFileError, ParameterError
    from pellucid.reports import validate_report

    p = copy.deepcopy(demo[1])
    cond, where = _condition(p)
    cond["value"] = "abc"
    with pytest.raises(DataFileError) as e:
        validate_report(p, "report.json")
    assert str(e.value).startswith(f'report.json: {where}.value: expected a number, "inf" or "-inf"')
    assert str(e.value).endswith('got "abc"')
    with pytest.raises(ParameterError, match=r"^the payload: "):
        validate_report(p, "the payload", error=ParameterError)
    # Keys that are not names are quoted as JSON strings.
    p = copy.deepcopy(demo[1])
    p["surrogates"][0]["fidelity"]["intervals"]["methods"]["rules.coverage"] = 3
    with pytest.raises(DataFileError, match=r'surrogates\[0\]\.fidelity\.intervals\.methods\["rules\.coverage"\]: expected text, got 3'):
        validate_report(p, "report.json")


def test_python_nan_and_infinity_are_refused_by_path(demo):
    from pellucid.errors import DataFileError
    from pellucid.reports import validate_report

    for bad in (float("nan"), float("inf")):
        p = copy.deepcopy(demo[1])
        p["distillation"]["holdout_share"] = bad
        with pytest.raises(DataFileError, match=r"report\.json: distillation\.holdout_share: .*(nan|inf).* not a number JSON"):
            validate_report(p, "report.json")


def test_a_fine_report_passes_every_index_check(demo):
    from pellucid.reports import validate_report

    p = copy.deepcopy(demo[1])
    assert p["recommended"] is not None and p["linear_view"] is not None and p["frontier"]["selected"] is not None
    validate_report(p, "report.json")
    p["recommended"] = p["linear_view"] = None
    p["frontier"]["selected"] = None
    validate_report(p, "report.json")


# ---------------------------------------------------------------------------- writing
def test_build_refuses_a_payload_that_does_not_validate(demo, tmp_path):
    from pellucid.errors import ParameterError
    from pellucid.reports import build

    p = copy.deepcopy(demo[1])
    p["surrogates"][0]["rules"] = "none"
    with pytest.raises(ParameterError, match=r"surrogates\[0\]\.rules: expected a list of rules"):
        build(p, tmp_path / "out")
    _nothing_in(tmp_path / "out")


def test_a_card_with_nan_is_refused(demo, tmp_path, capfd):
    card = tmp_path / "card.toml"
    card.write_text('[performance]\nauc = nan\n')
    code = main(["report", str(demo[0]), "--out", str(tmp_path / "out"), "--card", str(card)])
    _, err = capfd.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "card.toml" in err and "performance" in err and "auc" in err
    _nothing_in(tmp_path / "out")


# ---------------------------------------------------------------------------- 1.x reports
def _version_1(payload: dict) -> dict:
    """A report as pellucid 1.4 wrote it: no run block or content hash, the 2.0 keys absent,
    durations in place, infinite thresholds as null."""
    p = copy.deepcopy(payload)
    p["schema_version"] = "1.4"
    for key in ("run", "content_sha256"):
        del p[key]
    p["generated_by"]["created"] = "2024-05-01T12:00:00+00:00"
    p["meta"]["command_line"] = "pellucid demo"
    for s in p["surrogates"]:
        for key in ("fitted_on", "same_rules_as", "rule_model", "missing_values"):
            del s[key]
        s["fit_seconds"] = 0.5
        for r in s["rules"] + [s["default"]]:
            del r["train_matches"], r["train_decides"]
            for c in r["conditions"]:
                if c["value"] in ("inf", "-inf"):
                    c["value"] = None
    cond, _ = _condition(p)
    cond["value"] = None  # an infinite threshold, as 1.x wrote it
    return p


def test_a_1x_report_validates_and_renders(demo, tmp_path, capfd):
    from pellucid.reports import validate_report

    old = _version_1(demo[1])
    validate_report(old, "report.json")
    older = copy.deepcopy(old)  # 1.0: before frontier, attributions, card, limitations, ...
    older["schema_version"] = "1.0"
    for key in ("recommended_by", "frontier", "disagreement", "attributions", "local", "linear_view", "card",
                "analysis", "limitations"):
        del older[key]
    for s in older["surrogates"]:
        for key in ("stability", "additive", "fit_seconds"):
            del s[key]
    validate_report(older, "report.json")
    for version, payload in (("1.4", old), ("1.0", older)):
        src = tmp_path / version / "report.json"
        src.parent.mkdir()
        src.write_text(json.dumps(payload), encoding="utf-8")
        out = tmp_path / f"out-{version}"
        code = main(["report", str(src), "--out", str(out)])
        got, err = capfd.readouterr()
        assert code == 0 and err == "", err
        assert "report 1." not in got and (out / "report.html").is_file()
        assert f"report.json schema {version}" in (out / "report.html").read_text(encoding="utf-8")
        code = main(["diff", str(src), str(demo[0])])
        got, err = capfd.readouterr()
        assert code == 0 and err == "" and got.startswith("# pellucid diff")


def test_a_1x_report_keeps_its_own_requirements(demo):
    from pellucid.errors import DataFileError
    from pellucid.reports import validate_report

    old = _version_1(demo[1])
    del old["surrogates"][0]["rules"]
    with pytest.raises(DataFileError, match=r"surrogates\[0\]: missing key 'rules'"):
        validate_report(old, "report.json")
    # What 1.x could not have is required from 2.0 on.
    new = copy.deepcopy(demo[1])
    del new["surrogates"][0]["rule_model"]
    with pytest.raises(DataFileError, match=r"surrogates\[0\]: missing key 'rule_model'"):
        validate_report(new, "report.json")


def _leaves(node, path=()):
    """Every (path, value) in a payload: containers and the values in them."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _leaves(v, (*path, i))


# What a hand edit puts where a value was: another type, an edge of the right type, or nothing.
REPLACEMENTS = ["text", "", -1, 0, 1, 2.5, 10**12, -0.5, True, None, [], [1, "a"], {}, {"x": 1}]


@pytest.fixture
def figures_once(monkeypatch):
    """The page's figures drawn once per distinct input: an edit changes one value, so almost
    every figure of an edited report is the unedited one's (drawing them all again would make
    200 edits take most of an hour). A figure whose input the edit changed is drawn."""
    from pellucid.reports import figures

    for name in [n for n in dir(figures) if n.endswith("_figure")]:
        draw, seen = getattr(figures, name), {}

        def once(*args, _draw=draw, _seen=seen, **kwargs):
            key = json.dumps([args, kwargs], sort_keys=True, default=repr)
            if key not in _seen:
                _seen[key] = _draw(*args, **kwargs)
            return _seen[key]

        monkeypatch.setattr(figures, name, once)


def test_any_one_edit_is_refused_in_one_line_or_renders(demo, figures_once):
    """Fuzzing: 200 seeded edits of the demo's report.json (a value replaced by another type, a
    key deleted). Each is refused by the validator (one message naming a JSON path) or the page
    and the diff render it: no edit reaches a reader as a traceback."""
    import random

    from pellucid.errors import DataFileError
    from pellucid.reports import diff_reports, render_diff_html, render_html, validate_report

    places = [p for p, _ in _leaves(demo[1]) if p]
    rng = random.Random(17)
    refused = rendered = 0
    failures = {}
    for _ in range(200):
        p = copy.deepcopy(demo[1])
        path = rng.choice(places)
        parent = p
        for key in path[:-1]:
            parent = parent[key]
        if isinstance(parent, dict) and rng.random() < 0.2:
            del parent[path[-1]]
        else:
            parent[path[-1]] = copy.deepcopy(rng.choice(REPLACEMENTS))
        try:
            validate_report(p, "edited.json")
        except DataFileError as e:
            line = str(e)
            assert "\n" not in line and line.startswith("edited.json"), line
            refused += 1
            continue
        try:
            render_html(p)
            render_diff_html(diff_reports(demo[1], p))
        except Exception as e:  # a valid report that does not render is a bug in the schema or the page
            failures[path] = f"{type(e).__name__}: {e}"
            continue
        rendered += 1
    assert not failures, "edits that validate but do not render:\n" + "\n".join(f"{k}: {v}" for k, v in failures.items())
    assert refused > 50 and rendered > 50, (refused, rendered)
