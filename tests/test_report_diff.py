"""Tests of pellucid.reports.diff: comparing two reports (two model versions).

One real report is made once on small data (the whole path, :func:`pellucid.pipeline.explain`);
the "new" report is a copy changed in known ways (a threshold moved, a rule dropped, the
fidelity lowered, two features' importances swapped, a feature added to the schema), and the
diff must report exactly those changes and nothing else.
"""

from __future__ import annotations

import copy
import json
import re

import pandas as pd
import pytest
from markupsafe import escape

from pellucid.cli import main
from pellucid.demo import TARGET, credit_preprocess, make_credit
from pellucid.errors import DataFileError, ParameterError
from pellucid.extraction import Rule
from pellucid.reports import diff_reports, render_diff_html, render_diff_text
from pellucid.reports.diff import compare_rankings, rule_text

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def base():
    """A real report on small data: a logistic regression behind the demo's preprocessing (a
    fast stand-in for a network: the path is the same, and occlusion needs no gradients)."""
    from sklearn.linear_model import LogisticRegression

    from pellucid import Oracle
    from pellucid.pipeline import explain

    df = make_credit(2000, random_state=1)
    X, y = df.drop(columns=TARGET), df[TARGET]
    pre = credit_preprocess(X)
    model = LogisticRegression(max_iter=1000).fit(pre.transform(X), y)
    oracle = Oracle(model, preprocess=pre, task="classification", verbose=0)
    result = explain(
        oracle, df, target=TARGET, out_dir=None, n=1000, sizes=(6,), surrogates=["decision_tree"], n_boot=0,
        attributions=["occlusion"], attribution_rows=60, local=False, verbose=0, meta={"title": "credit v1"},
    )
    # Through JSON, as the diff reads it from report.json.
    return json.loads(json.dumps(result.payload, allow_nan=False))


def _best(p):
    return p["surrogates"][p["recommended"]]


def _retext(rule):
    rule["text"] = Rule.from_dict(rule).to_dict()["text"]


def _numeric_condition(rules):
    """(rule index, condition index) of a finite numeric threshold, in a rule whose text no
    other rule shares."""
    for i, r in enumerate(rules):
        for j, c in enumerate(r["conditions"]):
            if c["op"] in ("<=", "<", ">", ">=") and c["value"] is not None:
                return i, j
    raise AssertionError("no numeric condition in the recommended surrogate")


@pytest.fixture(scope="module")
def changed(base):
    """The new report and what was changed in it."""
    new = copy.deepcopy(base)
    new["meta"]["title"] = "credit v2"
    best = _best(new)
    rules = best["rules"]
    assert len(rules) >= 3, "the test needs a recommended surrogate with 3 rules or more"

    # 1. Move one threshold by a known amount.
    i, j = _numeric_condition(rules)
    cond = rules[i]["conditions"][j]
    old_value = cond["value"]
    cond["value"] = old_value + 1.5
    _retext(rules[i])
    moved_text_new = rule_text(rules[i])

    # 2. Drop a rule (another one), keeping the complexity consistent.
    drop = next(k for k in range(len(rules)) if k != i)
    dropped = rule_text(rules[drop])
    del rules[drop]
    best["complexity"]["n_rules"] -= 1
    best["tree"] = None  # a tree's drawing names its rules by index: without one rule it is no tree

    # 3. Lower the headline agreement by 10 points, interval and all.
    fid = best["fidelity"]
    fid["agreement"] -= 0.10
    fid["agreement_ci"] = [v - 0.10 for v in fid["agreement_ci"]]

    # 4. Swap the importances of the top feature and the last one, for one method.
    method = new["attributions"]["methods"][0]
    imp = method["importance"]
    ranked = sorted(imp, key=lambda f: (-imp[f], f))
    top, last = ranked[0], ranked[-1]
    imp[top], imp[last] = imp[last], imp[top]

    # 5. A new feature in the schema (with a name that is markup).
    new["data"]["schema"]["features"].append(
        {"name": HOSTILE, "kind": "numeric", "low": 0.0, "high": 1.0, "categories": None}
    )
    return dict(
        new=new, moved=(_best(base)["rules"][i], i, j, old_value, moved_text_new), dropped=dropped,
        method=method["name"], top=top, last=last,
    )


@pytest.fixture(scope="module")
def d(base, changed):
    return diff_reports(base, changed["new"])


# ---------------------------------------------------------------------------- what changed
def test_moved_threshold_is_reported_as_changed(base, d, changed):
    rule, i, j, old_value, new_text = changed["moved"]
    r = d["rules"]
    assert len(r["changed"]) == 1
    c = r["changed"][0]
    assert c["old_text"] == rule_text(rule) and c["new_text"] == new_text
    assert c["old_index"] == i
    (t,) = c["thresholds"]
    cond = rule["conditions"][j]
    assert t["feature"] == cond["feature"] and t["op"] == cond["op"]
    assert t["old"] == old_value and t["new"] == pytest.approx(old_value + 1.5)
    assert t["delta"] == pytest.approx(1.5)
    feature = next(f for f in changed["new"]["data"]["schema"]["features"] if f["name"] == cond["feature"])
    assert t["relative"] == pytest.approx(1.5 / (feature["high"] - feature["low"]))


def test_dropped_rule_is_removed_and_the_rest_kept(base, d, changed):
    r = d["rules"]
    assert [x["text"] for x in r["removed"]] == [changed["dropped"]]
    assert r["added"] == []
    n = len(_best(base)["rules"])
    assert len(r["kept"]) == n - 2 and r["n_old"] == n and r["n_new"] == n - 1
    untouched = {rule_text(x) for k, x in enumerate(_best(base)["rules"])} - {changed["dropped"], d["rules"]["changed"][0]["old_text"]}
    assert {k["text"] for k in r["kept"]} == untouched
    assert r["default"]["changed"] is False


def test_fidelity_drop_beyond_the_intervals_is_significant(base, d):
    f = d["fidelity"]
    assert f["measure"] == "agreement" and f["same_surrogate"] is True
    assert f["old"]["label"] == _best(base)["label"]
    assert f["delta"] == pytest.approx(-0.10) and f["delta_points"] == pytest.approx(-10.0)
    assert f["significant"] is True
    assert "do not overlap" in f["significance_rule"]


def test_small_fidelity_change_within_the_intervals_is_not_significant(base):
    new = copy.deepcopy(base)
    _best(new)["fidelity"]["agreement"] -= 0.001
    f = diff_reports(base, new)["fidelity"]
    assert f["delta_points"] == pytest.approx(-0.1)
    assert f["significant"] is False


def test_surrogates_matched_by_name(base, d):
    s = d["surrogates"]
    labels = [x["label"] for x in base["surrogates"]]
    assert [m["label"] for m in s["matched"]] == labels
    assert s["only_old"] == [] and s["only_new"] == []
    for m in s["matched"]:
        if m["label"] == _best(base)["label"]:
            assert m["delta"] == pytest.approx(-0.10) and m["delta_rules"] == -1 and m["significant"] is True
            assert m["old_recommended"] and m["new_recommended"]
        else:
            assert m["delta"] == 0 and m["delta_rules"] == 0 and m["significant"] is False


def _drop_surrogate(p, i):
    """``p`` without surrogate ``i``, every index into ``surrogates`` kept pointing where it did
    (the report must validate: an index past the end of its list is refused)."""
    gone = p["surrogates"].pop(i)

    def moved(k):
        return None if k is None or k == i else (k - 1 if k > i else k)

    for key in ("recommended", "linear_view"):
        p[key] = moved(p[key])
    for e in (p["frontier"] or {}).get("entries", []):
        e["surrogate_index"] = moved(e["surrogate_index"])
    if p["disagreement"]:
        p["disagreement"]["surrogate_index"] = moved(p["disagreement"]["surrogate_index"])
    if p["attributions"]:
        p["attributions"]["pairing"] = [{**r, "surrogate_index": moved(r["surrogate_index"])}
                                        for r in p["attributions"]["pairing"] if r["surrogate_index"] != i]
    return gone


def test_surrogates_on_one_side_only(base):
    new = copy.deepcopy(base)
    assert base["recommended"] != 0
    gone = _drop_surrogate(new, 0)
    s = diff_reports(base, new)["surrogates"]
    assert [x["label"] for x in s["only_old"]] == [gone["label"]] and s["only_new"] == []
    assert gone["label"] not in [m["label"] for m in s["matched"]]


def test_swapped_importances_change_the_top_features(base, d, changed):
    methods = {m["name"]: m for m in d["features"]["methods"]}
    assert set(methods) == {m["name"] for m in base["attributions"]["methods"]}
    m = methods[changed["method"]]
    assert m["entered"] == [changed["last"]] and m["left"] == [changed["top"]]
    assert m["new_top"][0] == changed["last"] and len(m["new_top"]) == d["features"]["k"] == 5
    old = next(x for x in base["attributions"]["methods"] if x["name"] == changed["method"])["importance"]
    new = next(x for x in changed["new"]["attributions"]["methods"] if x["name"] == changed["method"])["importance"]
    expected = pd.Series(old).corr(pd.Series(new)[list(old)], method="spearman")
    assert m["spearman"] == pytest.approx(expected) and m["spearman"] < 1


def test_methods_matched_by_name(base):
    new = copy.deepcopy(base)
    extra = copy.deepcopy(new["attributions"]["methods"][0])
    extra["name"], extra["label"] = "lrp", "LRP"
    new["attributions"]["methods"].append(extra)
    f = diff_reports(base, new)["features"]
    assert [m["name"] for m in f["methods"]] == [m["name"] for m in base["attributions"]["methods"]]
    assert f["only_new"] == ["lrp"] and f["only_old"] == []
    assert f["methods"][0]["spearman"] == pytest.approx(1.0) and not f["methods"][0]["order_changed"]


def test_surrogate_importance_when_present(base):
    old, new = copy.deepcopy(base), copy.deepcopy(base)
    old["surrogates"][0]["importance"] = {"a": 3.0, "b": 2.0, "c": 1.0}
    new["surrogates"][0]["importance"] = {"a": 1.0, "b": 2.0, "c": 3.0}
    f = diff_reports(old, new, top_k=1)["features"]
    (s,) = f["surrogates"]
    assert s["label"] == base["surrogates"][0]["label"]
    assert s["entered"] == ["c"] and s["left"] == ["a"] and s["spearman"] == pytest.approx(-1.0)
    assert diff_reports(base, base)["features"]["surrogates_note"]


def test_schema_added_feature_is_the_only_schema_change(d):
    sc = d["schema"]
    assert sc["added"] == [{"feature": HOSTILE, "kind": "numeric"}]
    assert sc["removed"] == sc["kind_changed"] == sc["range_changed"] == sc["categories_changed"] == []


def test_schema_kind_range_and_categories(base):
    new = copy.deepcopy(base)
    feats = {f["name"]: f for f in new["data"]["schema"]["features"]}
    feats["age"]["kind"] = "numeric" if feats["age"]["kind"] != "numeric" else "integer"
    feats["income"]["high"] += 10
    feats["home"]["categories"] = [c for c in feats["home"]["categories"] if c != "own"] + ["boat"]
    new["data"]["schema"]["features"] = [f for f in new["data"]["schema"]["features"] if f["name"] != "region"]
    sc = diff_reports(base, new)["schema"]
    assert [x["feature"] for x in sc["kind_changed"]] == ["age"]
    assert [(x["feature"], x["new_high"] - x["old_high"]) for x in sc["range_changed"]] == [("income", pytest.approx(10))]
    assert sc["categories_changed"] == [{"feature": "home", "added": ["boat"], "removed": ["own"]}]
    assert [x["feature"] for x in sc["removed"]] == ["region"]


def test_summary_names_each_change(d):
    assert d["summary"]["changed"] is True
    text = " ".join(d["summary"]["lines"])
    assert "-10.0 points" in text and "significant" in text
    assert "1 with moved thresholds, 1 removed, 0 added" in text
    assert "1 feature(s) added" in text


def test_a_report_diffed_with_itself_shows_no_change(base):
    d = diff_reports(base, copy.deepcopy(base))
    assert d["summary"]["changed"] is False
    assert d["fidelity"]["delta"] == 0 and d["fidelity"]["significant"] is False
    r = d["rules"]
    assert r["changed"] == r["removed"] == r["added"] == [] and len(r["kept"]) == len(_best(base)["rules"])
    assert all(not k["moved"] for k in r["kept"])
    for m in d["features"]["methods"]:
        assert m["entered"] == m["left"] == [] and not m["order_changed"] and m["spearman"] == pytest.approx(1.0)
    assert all(not d["schema"][k] for k in ("added", "removed", "kind_changed", "range_changed", "categories_changed"))
    assert d["identity"]["schema_versions_differ"] is False and d["notes"] == []
    assert "No change" in render_diff_text(d)


def test_identity_and_ground_truth(base, d):
    assert d["old"]["title"] == "credit v1" and d["new"]["title"] == "credit v2"
    assert d["old"]["schema_version"] == base["schema_version"]
    assert d["identity"]["same_data"] is True
    g = d["ground_truth"]
    assert g["measure"] == "accuracy" and g["old"]["value"] == base["ground_truth"]["accuracy"] and g["delta"] == 0


def test_different_schema_versions_compare_what_both_have(base):
    old = copy.deepcopy(base)
    old["schema_version"] = "1.1"
    old["attributions"] = None  # a 1.1 report has none
    d = diff_reports(old, base)
    assert d["identity"]["schema_versions_differ"] is True
    assert any("schema versions differ" in n for n in d["notes"])
    assert any("no attributions" in n for n in d["notes"])
    assert d["features"]["methods"] == [] and d["rules"]["changed"] == []


def test_regression_reports_compare_r2_without_significance(base):
    old, new = copy.deepcopy(base), copy.deepcopy(base)
    for p in (old, new):
        p["distillation"]["task"] = "regression"
    _best(new)["fidelity"]["r2"] = (_best(old)["fidelity"]["r2"] or 0) + 0.05
    f = diff_reports(old, new)["fidelity"]
    assert f["measure"] == "r2" and f["delta"] == pytest.approx(0.05)
    assert f["delta_points"] is None and f["significant"] is None


def test_compare_rankings_ties_and_constant():
    out = compare_rankings({"a": 3, "b": 2, "c": 1}, {"a": 1, "b": 1, "c": 1}, k=2)
    assert out["old_top"] == ["a", "b"] and out["new_top"] == ["a", "b"]
    assert out["spearman"] is None and "constant" in out["reason"]


# ---------------------------------------------------------------------------- rendering
def _hostile_pair(base):
    """A new report where the markup name is a feature of a rule, a top feature and a category."""
    new = copy.deepcopy(base)
    rules = _best(new)["rules"]
    i, j = _numeric_condition(rules)
    old_name = rules[i]["conditions"][j]["feature"]
    rules[i]["conditions"][j]["feature"] = HOSTILE
    _retext(rules[i])
    imp = new["attributions"]["methods"][0]["importance"]
    imp[HOSTILE] = 10.0 * max(imp.values())
    feats = {f["name"]: f for f in new["data"]["schema"]["features"]}
    feats["home"]["categories"] = feats["home"]["categories"] + [HOSTILE]
    # Backticks in a name must not end its code span in the Markdown.
    new["data"]["schema"]["features"].append({"name": f"`{HOSTILE}`", "kind": "numeric", "low": 0.0, "high": 1.0})
    new["surrogates"][0]["label"] = HOSTILE
    new["meta"]["title"] = HOSTILE
    return diff_reports(base, new), old_name


def test_markup_in_names_is_escaped_in_the_html(base):
    d, _ = _hostile_pair(base)
    html = render_diff_html(d)
    assert HOSTILE not in html and "<img" not in html
    assert str(escape(HOSTILE)) in html
    assert "<script" not in html.lower()
    # Self-contained: no external resource.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<style>" in html and "--accent" in html  # report.css inlined


def test_markup_in_names_is_code_in_the_markdown(base):
    d, _ = _hostile_pair(base)
    md = render_diff_text(d)
    assert HOSTILE in md
    outside = re.sub(r"(`+).*?\1", "", md)  # drop code spans
    assert not re.search(r"(?<!\\)<img", outside)
    assert "\\<img" in outside  # the title, escaped


def test_renderers_show_the_changes(d, changed):
    md = render_diff_text(d)
    html = render_diff_html(d)
    assert changed["dropped"] in md and str(escape(changed["dropped"])) in html
    assert "Moved thresholds" in md and "Moved thresholds" in html
    assert "**significant**" in md
    assert changed["last"] in md


# ---------------------------------------------------------------------------- bad input
def test_bad_files_give_clear_errors(tmp_path, base):
    missing = tmp_path / "missing.json"
    with pytest.raises(DataFileError, match=r"missing\.json.*does not exist"):
        diff_reports(missing, base)
    not_json = tmp_path / "broken.json"
    not_json.write_text("{not json")
    with pytest.raises(DataFileError, match=r"broken\.json.*is not JSON"):
        diff_reports(base, not_json)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataFileError, match=r"other\.json.*not a pellucid report.*schema_version"):
        diff_reports(other, base)
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(DataFileError, match=r"list\.json.*not a pellucid report"):
        diff_reports(listed, base)
    images = tmp_path / "images.json"
    images.write_text(json.dumps({"schema_version": "1.2", "kind": "images", "attributions": {}}))
    with pytest.raises(DataFileError, match=r"images\.json.*kind 'images'"):
        diff_reports(images, base)
    future = tmp_path / "future.json"
    future.write_text(json.dumps({**base, "schema_version": "3.0"}))
    with pytest.raises(DataFileError, match=r"future\.json.*'3\.0'"):
        diff_reports(base, future)
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    with pytest.raises(DataFileError, match=r"empty.*holds no report\.json"):
        diff_reports(empty_dir, base)
    with pytest.raises(ParameterError, match=r"old report.*schema_version"):
        diff_reports({"surrogates": []}, base)
    with pytest.raises(ParameterError, match="top_k"):
        diff_reports(base, base, top_k=0)


# ---------------------------------------------------------------------------- command line
@pytest.fixture
def files(tmp_path, base, changed):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    (a / "report.json").write_text(json.dumps(base))
    (b / "report.json").write_text(json.dumps(changed["new"]))
    return a / "report.json", b / "report.json"


def test_cli_prints_markdown(files, capsys):
    code = main(["diff", str(files[0]), str(files[1])])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert out.startswith("# pellucid diff") and "## Rules of the recommended surrogate" in out


@pytest.mark.parametrize("suffix", [".md", ".html", ".json"])
def test_cli_writes_each_format(files, tmp_path, capsys, suffix):
    out_file = tmp_path / f"diff{suffix}"
    code = main(["diff", str(files[0].parent), str(files[1]), "--out", str(out_file)])
    out, err = capsys.readouterr()
    assert code == 0 and out == "" and err == ""
    text = out_file.read_text()
    if suffix == ".json":
        d = json.loads(text)
        assert d == diff_reports(files[0], files[1])
        assert d["rules"]["removed"] and d["fidelity"]["significant"] is True
    elif suffix == ".html":
        assert text.startswith("<!DOCTYPE html>") and HOSTILE not in text
    else:
        assert text.startswith("# pellucid diff")


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["{a}", "{tmp}/nope.json"], r"nope\.json' does not exist"),
        (["{a}", "{bad}"], r"bad\.json' is not JSON"),
        (["{a}", "{a}", "--out", "{tmp}/diff.pdf"], r"unknown format '\.pdf'"),
    ],
)
def test_cli_errors_exit_2_with_one_line(files, tmp_path, capsys, argv, pattern):
    (tmp_path / "bad.json").write_text("nope")
    argv = [x.format(a=files[0], tmp=tmp_path, bad=tmp_path / "bad.json") for x in argv]
    code = main(["diff", *argv])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("pellucid: error: ")
    assert re.search(pattern, err)
