"""The page states every estimate with its interval, next to the number, as report.json holds
them: the headline R², the network against the target, the per-class table, the rules on both
bases of a rule list, the comparison table, stability and the rank agreements."""

from __future__ import annotations

import html as html_lib
import re

import numpy as np
import pandas as pd
import pytest

from pellucid import _validation as fmt
from pellucid.attribution.summary import summarise
from pellucid.extraction import distill
from pellucid.fidelity import evaluate, ground_truth, stability
from pellucid.reports import build_payload
from pellucid.reports.builder import render_html
from pellucid.surrogates import DecisionTree
from pellucid.surrogates.rule_lists import GreedyRuleList

from .conftest import mixed_frame
from .test_tree import mixed_oracle


def _section(page: str, sid: str) -> str:
    part = page[page.index(f'<section id="{sid}">'):]
    return html_lib.unescape(re.sub(r"<[^>]+>", " ", part[:part.index("</section>")]))


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture(scope="module")
def cls_report():
    frame = mixed_frame(900, seed=3)
    oracle = mixed_oracle(classes=("no", "yes"))
    dset = distill(oracle, frame, n=1500, random_state=0)
    rule_list = GreedyRuleList(max_rules=5).fit(dset)
    tree = DecisionTree(max_leaf_nodes=4).fit(dset)
    fids = [evaluate(rule_list, rows=dset), evaluate(tree, rows=dset)]
    x = np.nan_to_num(frame["x"].astype(float).to_numpy(), nan=12.0)
    y = pd.Series(np.where(x > 10.5, "no", "yes"), dtype=object)
    att = summarise(oracle, dset.holdout.rows, methods=["occlusion"], surrogates=[rule_list, tree],
                    surrogate_labels=["list", "tree"], distillation=dset, max_rows=60, random_state=0)
    payload = build_payload(model=oracle.describe(), schema=dset.schema, dset=dset, surrogates=[rule_list, tree],
                            fidelities=fids, ground_truth=ground_truth(dset, y, "y"),
                            stability={0: stability(rule_list, dset, n_boot=4, verbose=0)},
                            attributions=att, recommended=0)
    return payload, render_html(payload)


@pytest.fixture(scope="module")
def reg_report():
    frame = mixed_frame(900, seed=3)
    oracle = mixed_oracle(task="regression")
    dset = distill(oracle, frame, n=1500, random_state=0)
    tree = DecisionTree(max_leaf_nodes=6).fit(dset)
    y = pd.Series(oracle.query(dset.schema.validate(frame)) + np.random.default_rng(0).normal(0, 0.3, len(frame)))
    payload = build_payload(model=oracle.describe(), schema=dset.schema, dset=dset, surrogates=[tree],
                            fidelities=[evaluate(tree, rows=dset)], ground_truth=ground_truth(dset, y, "y"))
    return payload, render_html(payload)


def test_rules_show_both_bases_with_intervals(cls_report):
    p, page = cls_report
    best = p["surrogates"][p["recommended"]]
    assert best["ordered"]
    rules = _text(page[page.index('<section id="rules">'):page.index('<section id="tree">')
                       if '<section id="tree">' in page else None])
    assert "Matches (held-out)" in rules and "Precision where it matches" in rules
    assert "Decides (held-out)" in rules and "Precision where it decides" in rules
    assert "two bases" in rules
    shown = 0
    for r in best["rules"] + [best["default"]]:
        for key in ("coverage", "precision", "decides", "decided_precision"):
            if r.get(key) is None or (key == "coverage" and r is best["default"]):
                continue
            assert f"{fmt.pct(r[key])} {fmt.interval(r[key + '_ci'])}" in rules, (key, r["text"])
            shown += 1
    assert shown >= 4 * len(best["rules"])


def test_per_class_comparison_and_stability_show_intervals(cls_report):
    p, page = cls_report
    best = p["surrogates"][p["recommended"]]
    text = _text(page)
    for c in best["fidelity"]["per_class"]:
        assert (f"{fmt.pct(c['agreement'])} {fmt.interval(c['agreement_ci'])} {fmt.pct(c['precision'])} "
                f"{fmt.interval(c['precision_ci'])}") in text
    for s in p["surrogates"]:
        f = s["fidelity"]
        assert f"{fmt.fixed(f['macro_f1'])} {fmt.interval(f['macro_f1_ci'], as_pct=False, decimals=3)}" in text
        assert f"{fmt.fixed(f['r2'])} {fmt.interval(f['r2_ci'], as_pct=False, decimals=3)}" in text
    st = best["stability"]
    assert f"{fmt.pct(st['rule_stability'], 0)} {fmt.interval(st['rule_stability_ci'], decimals=0)}" in text
    assert f"{fmt.pct(st['prediction_agreement'])} {fmt.interval(st['prediction_agreement_ci'])}" in text
    assert "interval over the refits" in text



def test_regression_intervals_claim_no_more_digits_than_their_estimates(reg_report):
    # Outputs in the hundreds (a price, a dose): an error of 32.12 once had the interval
    # "27.3057 to 37.3179" beside it, six digits where the estimate shows four.
    import copy

    p = copy.deepcopy(reg_report[0])
    f = p["surrogates"][0]["fidelity"]
    f["mae"], f["mae_ci"] = 32.123456, [27.305712, 37.317893]
    f["rmse"], f["rmse_ci"] = 41.38022, [35.600217, 47.218813]
    text = _text(render_html(p))
    assert "mean absolute error 32.12 (95% interval 27.31 to 37.32, bootstrap)" in text
    table = text[text.index("Surrogate comparison"):]
    assert "32.12 27.31 to 37.32" in table and "41.38 35.6 to 47.22" in table


def test_ground_truth_and_rank_agreement_show_intervals(cls_report):
    p, page = cls_report
    gt = p["ground_truth"]
    section = re.sub(r"\s+", " ", _section(page, "ground-truth"))
    assert (f"{fmt.pct(gt['accuracy'])} (95% interval {fmt.interval(gt['accuracy_ci'])}, Wilson) on "
            f"{fmt.count(gt['n'])} held-out rows") in section
    assert "accuracy_ci" not in section and "intervals" not in section  # not listed as raw keys
    att = _text(page[page.index('<section id="attributions">'):])
    for r in p["attributions"]["pairing"]:
        assert (f"{fmt.fixed(r['spearman'], 2)} · {fmt.pct(r['top_k'], 0)} "
                f"{fmt.interval(r['spearman_ci'], as_pct=False, decimals=2)}") in att
    assert p["attributions"]["intervals"]["methods"]["pairing.spearman"] in att


def test_regression_headline_and_ground_truth_show_bootstrap_intervals(reg_report):
    p, page = reg_report
    f = p["surrogates"][0]["fidelity"]
    text = _text(page)
    assert (f"R² {fmt.fixed(f['r2'])} (95% interval {fmt.interval(f['r2_ci'], as_pct=False, decimals=3)}, "
            "bootstrap)") in text
    note = re.search(r"mean absolute error (\S+) \(95% interval (\S+) to (\S+), bootstrap\)", text)
    assert note is not None and note.group(1) == fmt.sig(f["mae"])
    # The bounds claim no more precision than the estimate: as many significant digits at most.
    assert float(note.group(2)) == pytest.approx(f["mae_ci"][0], rel=1e-3)
    assert float(note.group(3)) == pytest.approx(f["mae_ci"][1], rel=1e-3)
    for bound in note.groups():
        assert len(bound.replace(".", "").lstrip("0")) <= 4, note.group(0)
    table = _text(page[page.index('<section id="surrogates">'):])
    for key in ("mae", "rmse"):
        lo, hi = f[f"{key}_ci"]
        assert f"{fmt.sig(f[key])} {fmt.sig(lo)} to {fmt.sig(hi)}" in table
    gt = p["ground_truth"]
    assert (f"R² {fmt.fixed(gt['r2'])} (95% interval {fmt.interval(gt['r2_ci'], as_pct=False, decimals=3)}, "
            "bootstrap)") in text
    assert f["intervals"]["methods"]["r2"] in text  # the method, in words, under the table
