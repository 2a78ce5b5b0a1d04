"""Single decisions in the report: which rows are picked, what is gathered, how it is shown."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle, distill
from pellucid.errors import ParameterError
from pellucid.fidelity import evaluate
from pellucid.reports import build_payload
from pellucid.reports.builder import render_html
from pellucid.surrogates import DecisionTree
from pellucid.surrogates.local_summary import pick_rows, summarise_local

HOSTILE = "<img src=x onerror=alert(1)>"


def test_pick_rows_names_the_most_and_least_confident_and_the_disagreements():
    rows = pd.DataFrame({"x": np.arange(6.0)}, index=list("abcdef"))
    p_hi = np.array([0.9, 0.2, 0.55, 0.05, 0.7, 0.4])  # P(hi) per row
    outputs = np.column_stack([1 - p_hi, p_hi])

    class Says:
        name = "rules"

        def predict(self, X):  # disagrees with the network on rows c and e
            return np.where(X["x"].isin([2.0, 4.0]), np.where(p_hi[X["x"].astype(int)] > 0.5, "lo", "hi"),
                            np.where(p_hi[X["x"].astype(int)] > 0.5, "hi", "lo"))

    picked = dict(pick_rows(rows, outputs, "classification", classes=["lo", "hi"], surrogate=Says()))
    assert picked["d"] == "most confident lo"  # P(lo) 0.95
    assert picked["a"] == "most confident hi"  # P(hi) 0.9
    assert picked["c"].startswith("least confident")  # 0.55
    assert "rules disagrees" in picked["c"] and picked["e"] == "rules disagrees"
    reg = dict(pick_rows(rows, p_hi, "regression"))
    # Sorted outputs d b f c e a: the median of six is the fourth, c.
    assert reg == {"a": "highest output", "c": "median output", "d": "lowest output"}


@pytest.fixture(scope="module")
def one_rule():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"x": rng.uniform(0, 10, 600), "z": rng.normal(size=600),
                       "c": rng.choice(["a", "b"], 600)})

    def net(d):
        p = 1 / (1 + np.exp(-3 * (d["x"].to_numpy() - 5)))
        return np.column_stack([1 - p, p])

    return Oracle(net, task="classification", classes=["no", "yes"]), df


def test_summarise_local_gives_reasons_fidelity_and_an_anchor(one_rule):
    oracle, df = one_rule
    rows = df.iloc[[0, 1, 2]].set_axis(["r0", "r1", "r2"])
    loc = summarise_local(oracle, rows, ["a", "b", "c"], df, num_samples=1000, random_state=0)
    assert [r["row"] for r in loc["rows"]] == ["r0", "r1", "r2"]
    for r, label in zip(loc["rows"], rows.index, strict=True):
        p = oracle.predict_proba(rows.loc[[label]])[0]
        assert r["output"] == pytest.approx(p.max(), abs=1e-9)
        contrib = r["lime"]["contributions"]
        # Only x moves the network: it carries the largest push.
        assert max(contrib, key=lambda f: abs(contrib[f] or 0)) == "x"
        an = r["anchor"]
        assert an["prediction"] == ("yes" if p[1] > 0.5 else "no")
        assert {c["feature"] for c in an["rule"]["conditions"]} <= {"x"}
    with pytest.raises(ParameterError, match="why has 1 entries for 3 rows"):
        summarise_local(oracle, rows, ["a"], df)


def test_the_page_shows_single_decisions_escaped(one_rule):
    oracle, df = one_rule
    df = df.rename(columns={"z": HOSTILE})
    dset = distill(oracle, df, n=600, random_state=0)
    tree = DecisionTree(max_leaf_nodes=4, random_state=0).fit(dset)
    rows = dset.holdout.rows.iloc[:2].set_axis([HOSTILE, "7"])
    loc = summarise_local(oracle, rows, ["most confident yes", "asked for"], df, num_samples=800, random_state=0)
    p = build_payload(model=oracle.describe(), schema=dset.schema, dset=dset, surrogates=[tree],
                      fidelities=[evaluate(tree, rows=dset)], local=loc)
    html = render_html(p)
    sec = html[html.index('<section id="local">'):]
    sec = sec[:sec.index("</section>")]
    assert HOSTILE not in html and "&lt;img src=x" in sec
    assert sec.count("<svg") == 2 and sec.count("Anchor:") == 2 and 'href="#local"' in html
    assert json.loads(json.dumps(p))["local"]["rows"][1]["why"] == "asked for"


def test_every_local_key_is_documented(one_rule):
    oracle, df = one_rule
    loc = summarise_local(oracle, df.iloc[:1], ["x"], df, num_samples=500, random_state=0)
    doc = (Path(__file__).parent.parent / "docs" / "report-json.md").read_text(encoding="utf-8")
    r = loc["rows"][0]
    groups = [loc, r, r["lime"], r["anchor"]]
    missing = sorted({k for g in groups for k in g if f"`{k}`" not in doc})
    assert not missing, f"keys not in docs/report-json.md: {missing}"


def test_a_row_with_fewer_reasons_lists_only_text():
    """Empty reason slots (a row with fewer than k reasons) are left out, never written as null:
    pandas holds them as NaN in a column where another row has a reason."""
    from types import SimpleNamespace

    from pellucid.surrogates.local_summary import local_report

    rows = pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=["a", "b", "c"])
    slots = np.array([["x = 1 (raises P(yes) by 0.5)", "x = 1 again"], [None, None], ["x = 3 (raises P(yes) by 0.1)", None]],
                     dtype=object)
    series = pd.Series([0.5, 0.6, 0.7], index=rows.index)
    ex = SimpleNamespace(
        rows=rows, reasons=lambda k: pd.DataFrame(slots, index=rows.index), contributions=rows * 0.1,
        target=pd.Series(["yes"] * 3, index=rows.index), output_name=pd.Series(["P(yes)"] * 3, index=rows.index),
        prediction_network=series, local_r2=series, prediction_local=series, intercept=series, params={},
    )
    out = local_report(ex, None, ["w"] * 3, num_samples=10, precision=0.95, k=2, random_state=0)
    assert [r["lime"]["reasons"] for r in out["rows"]] == [list(slots[0]), [], [slots[2][0]]]
