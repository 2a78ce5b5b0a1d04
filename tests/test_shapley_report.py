"""Shapley values in the explain run's report: the global summary, the beeswarm, the
single decisions' waterfalls, report.json and its schema, for torch and other models."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from pellucid import Oracle, explain
from pellucid.demo import CLASSES, TARGET
from pellucid.reports import validate_report
from pellucid.reports._svg import check_svg
from pellucid.reports.builder import render_html
from pellucid.reports.figures import beeswarm_figure, beeswarm_lines, waterfall_bars, waterfall_figure

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOSTILE = '<b>&"'


@pytest.fixture(scope="module")
def torch_run(credit, credit_net, tmp_path_factory):
    X, y = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES), verbose=0)
    df = X.iloc[:600].assign(**{TARGET: y.iloc[:600].to_numpy()})
    out = tmp_path_factory.mktemp("shapley-torch")
    r = explain(oracle, df, target=TARGET, out_dir=out, n=1500, sizes=[4], n_boot=0, attribution_rows=40,
                attributions=["gradient_x_input", "occlusion", "shapley"], verbose=0)
    return r, json.loads((out / "report.json").read_text(encoding="utf-8")), (out / "report.html").read_text("utf-8")


@pytest.fixture(scope="module")
def sklearn_run(credit, tmp_path_factory):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = credit
    X, y = X.iloc[:500], y.iloc[:500]
    nums = [c for c in X.columns if X[c].dtype.kind in "fi"]
    cats = [c for c in X.columns if c not in nums]
    pipe = make_pipeline(ColumnTransformer([("n", make_pipeline(SimpleImputer(), StandardScaler()), nums),
                                            ("c", OneHotEncoder(handle_unknown="ignore"), cats)]),
                         LogisticRegression(max_iter=500)).fit(X, y)
    out = tmp_path_factory.mktemp("shapley-sklearn")
    explain(Oracle(pipe, verbose=0), X.assign(**{TARGET: y.to_numpy()}), target=TARGET, out_dir=out, n=1000,
            sizes=[4], n_boot=0, attribution_rows=30, verbose=0)
    return json.loads((out / "report.json").read_text(encoding="utf-8")), (out / "report.html").read_text("utf-8")


def test_report_json_validates_and_states_the_basis(torch_run):
    _, p, html = torch_run
    validate_report(p)
    assert p["schema_version"] == "2.5"
    att = p["attributions"]
    methods = {m["name"]: m for m in att["methods"]}
    # The players are every raw feature, listed whole (not a repr cut short).
    assert methods["shapley"]["params"]["players"] == [f["name"] for f in p["data"]["schema"]["features"]]
    assert methods["shapley"]["label"] == "Shapley values" and methods["shapley"]["n_rows"] == att["shapley"]["n"]
    shap = att["shapley"]
    assert shap["method"] == "exact" and shap["output"] == "probability" and shap["definition"] == "interventional"
    assert shap["scale"] == f"probability of {CLASSES[0]}" and shap["axis"] == f"change in P({CLASSES[0]})"
    assert shap["background"]["rows"] == 100 and "observed training rows" in shap["background"]["from"]
    assert shap["doc"] == "docs/shapley.md" and "independently" in shap["note"]
    # The page says the same: background, scale, definition and where to read more.
    section = html[html.index('id="shapley"'):]
    assert "docs/shapley.md" in section and "100 of the" in section and "probability of good" in section
    # Completeness of Shapley values is their additivity error: against the base value, not zero.
    comp = methods["shapley"]["evaluation"]["completeness"]
    assert comp["reference"] == "f(x) − base value" and comp["mean_abs_delta"] < 1e-6
    rows = shap["rows"]
    gap = np.mean([abs(r["output"] - r["base_value"]) for r in rows])
    assert comp["mean_abs_gap"] == pytest.approx(gap, rel=1e-6)
    # The evaluation table says on how many rows each method was measured, and against what.
    assert '<th class="num">Rows</th>' in html and "of |f(x) − base value|" in html
    # In the rank-agreement table beside the other methods.
    assert {q["method"] for q in att["pairing"]} >= {"shapley", "occlusion"}


def test_global_mean_abs_is_the_mean_of_the_rows_values(torch_run):
    _, p, _ = torch_run
    shap = p["attributions"]["shapley"]
    rows = shap["rows"]
    assert len(rows) == shap["n"] == 40
    for f in shap["features"]:
        per_row = [abs(r["values"][f["feature"]]) for r in rows]
        assert f["mean_abs"] == pytest.approx(np.mean(per_row), rel=1e-9, abs=1e-15)
        lo, hi = f["mean_abs_ci"]
        assert lo <= f["mean_abs"] <= hi
    means = [f["mean_abs"] for f in shap["features"]]
    assert means == sorted(means, reverse=True)
    # Each row adds up: sum of values + base value - f(x) is its stated additivity error.
    for r in rows:
        assert sum(r["values"].values()) + r["base_value"] - r["output"] == pytest.approx(r["delta"], abs=1e-9)
    # Colours: a rank in [0, 1] per row, None where the value is missing.
    assert all(len(c) == len(rows) for c in shap["colour"].values())


def test_waterfalls_add_up_to_the_output(torch_run):
    _, p, html = torch_run
    loc = p["local"]
    assert loc["shapley"]["background"] == p["attributions"]["shapley"]["background"]
    assert loc["rows"]
    for r in loc["rows"]:
        sv = r["shapley"]
        bars = waterfall_bars(sv)
        assert len(bars) <= 9 and sum(not named for _, _, named in bars) <= 1
        total = sv["base_value"] + sum(v for _, v, _ in bars)
        assert abs(total - sv["output"]) <= abs(sv["delta"]) + 1e-9
        assert set(sv["raw"]) == set(sv["values"])
        # f(x) on the summary's scale: P(first class), whichever class the row's own output is.
        own = r["output"] if r["target"] == CLASSES[0] else 1 - r["output"]
        assert sv["output"] == pytest.approx(own, abs=1e-6)
    section = html[html.index('<section id="local">'):]
    section = section[:section.index("</section>")]
    assert len(re.findall(r'id="fig-waterfall-\d+-figure_1"', section)) == len(loc["rows"])
    assert "Shapley values for row" in section and "additivity error" in section


def test_beeswarm_has_one_line_per_feature_shown(torch_run):
    _, p, html = torch_run
    shap = p["attributions"]["shapley"]
    n_feat = len(shap["features"])
    assert len(beeswarm_lines(shap)) == min(12, n_feat) + (n_feat > 12)
    svg = beeswarm_figure(shap)
    # One scatter (a matplotlib PathCollection) per line.
    assert len(re.findall(r'<g id="[^"]*PathCollection_\d+"', svg)) == len(beeswarm_lines(shap))
    assert html.count('id="fig-beeswarm-figure_1"') == 1
    # Features beyond the top are summed into one line, named.
    many = {**shap, "features": shap["features"] * 2}
    lines = beeswarm_lines({**many, "features": [{**f, "feature": f"{f['feature']}_{i}"}
                                                 for i, f in enumerate(many["features"])]}, top=5)
    assert len(lines) == 6 and lines[-1][0] == f"{2 * n_feat - 5} other features"
    # One feature beyond the top is drawn as itself, not as "1 other features".
    six = {**many, "features": [{**f, "feature": f"{f['feature']}_{i}"} for i, f in enumerate(many["features"][:6])]}
    lines = beeswarm_lines(six, top=5)
    assert len(lines) == 6 and not any(grey for *_, grey in lines) and "other" not in lines[-1][0]
    # The table likewise lists a thirteenth feature rather than summarise it.
    thirteen = [{**f, "feature": f"{f['feature']}_{i}"} for i, f in enumerate((shap["features"] * 13)[:13])]
    page = render_html({**p, "attributions": {**p["attributions"], "shapley": {**shap, "features": thirteen}}})
    table = page[page.index('id="shapley"'):]
    listed = table[:table.index("</table>")]
    assert "other features" not in listed and thirteen[12]["feature"].replace("_", "_<wbr>") in listed


def test_the_beeswarm_key_names_other_features_only_where_a_line_sums_them(torch_run, monkeypatch):
    import matplotlib.axes

    _, p, _ = torch_run
    shap = p["attributions"]["shapley"]
    keys = []
    legend = matplotlib.axes.Axes.legend
    monkeypatch.setattr(matplotlib.axes.Axes, "legend", lambda self, h, labels, **k: keys.append(labels) or
                        legend(self, h, labels, **k))
    for n, summed in ((13, False), (14, True)):
        feats = [{**f, "feature": f"{f['feature']}_{i}"} for i, f in enumerate((shap["features"] * n)[:n])]
        lines = beeswarm_lines({**shap, "features": feats})
        assert len(lines) == 13 and lines[-1][3] == summed
        beeswarm_figure({**shap, "features": feats})
        assert keys.pop()[-1] == ("missing / other features" if summed else "missing")


def test_feature_names_are_escaped_in_both_figures(torch_run):
    _, p, _ = torch_run
    name = p["attributions"]["shapley"]["features"][0]["feature"]
    hostile = json.loads(json.dumps(p).replace(json.dumps(name), json.dumps(HOSTILE)))
    shap = hostile["attributions"]["shapley"]
    assert shap["features"][0]["feature"] == HOSTILE
    row = hostile["local"]["rows"][0]["shapley"]
    assert HOSTILE in row["values"]
    for svg in (beeswarm_figure(shap), waterfall_figure(row, hostile["local"]["shapley"])):
        check_svg(svg)
        assert "<b>" not in svg and '&"' not in svg
    html = render_html(hostile)
    assert HOSTILE not in html and "&lt;b&gt;&amp;" in html


def test_other_models_get_shapley_values(sklearn_run):
    p, html = sklearn_run
    validate_report(p)
    att = p["attributions"]
    assert [m["name"] for m in att["methods"]] == ["occlusion", "shapley"]
    shap = att["shapley"]
    # 11 players and 100 background rows are more model rows a row than "auto" enumerates for a
    # model that is not a torch network: sampled pairs, with their standard error, still additive.
    assert shap["n"] == 30 and shap["method"] == "paired" and shap["pairs"] == 200 and shap["standard_error"] > 0
    assert max(abs(r["delta"]) for r in shap["rows"]) < 1e-9
    text = re.sub(r"\s+", " ", html)
    assert "The values are sampled (200 pairs of a background row and an order of the features per row" in text
    assert all("shapley" in r for r in p["local"]["rows"])
    assert 'id="shapley"' in html and 'id="fig-waterfall-0-figure_1"' in html


def test_fewer_shapley_rows_are_stated_in_every_table(credit):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from pellucid import distill
    from pellucid.attribution.summary import summarise
    from pellucid.surrogates import DecisionTree

    X, y = credit
    X, y = X.iloc[:300], y.iloc[:300]
    nums = [c for c in X.columns if X[c].dtype.kind in "fi"]
    cats = [c for c in X.columns if c not in nums]
    pipe = make_pipeline(ColumnTransformer([("n", make_pipeline(SimpleImputer(), StandardScaler()), nums),
                                            ("c", OneHotEncoder(handle_unknown="ignore"), cats)]),
                         LogisticRegression(max_iter=500)).fit(X, y)
    oracle = Oracle(pipe, verbose=0)
    dset = distill(oracle, X, strategy="observed", random_state=0)
    tree = DecisionTree(max_leaf_nodes=4, random_state=0).fit(dset)
    att = summarise(oracle, X.iloc[:30], surrogates=[tree], surrogate_labels=["t"], distillation=dset,
                    max_rows=30, shapley_rows=10, random_state=0)
    rows = {m["name"]: m["n_rows"] for m in att["methods"]}
    assert rows == {"occlusion": 30, "shapley": 10} and att["shapley"]["n"] == 10 and att["shapley"]["of"] == 30
    assert "Shapley values: 10 of them" in att["intervals"]["methods"]["pairing.spearman"]
    # The ten rows are among the thirty, named as the data names them.
    assert {r["row"] for r in att["shapley"]["rows"]} <= {str(i) for i in X.index[:30]}
