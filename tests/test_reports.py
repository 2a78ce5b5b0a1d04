"""Tests of pellucid.reports: the JSON payload, the HTML page, figures and the tree drawing.

The objects are made end to end on the demo credit data with a stand-in oracle (a small torch
network behind its preprocessing). Some names are hostile on purpose (a feature called
``<script>alert(1)</script>``, a category ``<img src=x onerror=alert(1)>``, a class and a model
name with markup): the report must show them as text, never as markup. Expected numbers are
recomputed here from the live objects or the rows, never copied from the report's output.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
import shutil
import xml.etree.ElementTree as ET

import graphviz
import matplotlib.ticker
import numpy as np
import pandas as pd
import pytest
import torch
from markupsafe import escape

from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network
from pellucid.errors import ParameterError
from pellucid.extraction import Condition, distill, format_number
from pellucid.fidelity import evaluate
from pellucid.reports import build, build_payload, figures, recommend, render_html, tree_svg
from pellucid.reports._svg import UnsafeSVGError, check_svg, clean_svg
from pellucid.reports.payload import SCHEMA_VERSION
from pellucid.reports.tree import DOT_MISSING, quote, tree_dot
from pellucid.schema import Schema
from pellucid.surrogates import DecisionTree, Surrogate

HOSTILE_FEATURE = "<script>alert(1)</script>"
HOSTILE_CATEGORY = "<img src=x onerror=alert(1)>"
HOSTILE_CLASS = "<svg onload=alert(1)>bad"
HOSTILE_MODEL = "<script>alert('model')</script>"
# Quotes and a DOT escape sequence (\N would print the node's name): must reach the tree as text.
QUOTED_FEATURE = 'debt "ratio"\\N'
HOSTILE = (HOSTILE_FEATURE, HOSTILE_CATEGORY, HOSTILE_CLASS, HOSTILE_MODEL)

RENAME = {"income": HOSTILE_FEATURE, "debt_ratio": QUOTED_FEATURE}
HAS_DOT = shutil.which("dot") is not None


class StandInOracle:
    """What the real Oracle provides to distill(): query, task, classes_, n_queries."""

    def __init__(self, net, pre, task="classification"):
        self.net, self.pre, self.task = net, pre, task
        self.classes_ = np.array([CLASSES[0], HOSTILE_CLASS], dtype=object) if task == "classification" else None
        self.n_queries = 0

    def query(self, rows: pd.DataFrame) -> np.ndarray:
        self.n_queries += len(rows)
        raw = rows.rename(columns={v: k for k, v in RENAME.items()})
        raw["home"] = raw["home"].replace({HOSTILE_CATEGORY: "rent"})
        with torch.no_grad():
            z = torch.tensor(np.asarray(self.pre.transform(raw), dtype=np.float32))
            p = torch.softmax(self.net(z), -1).double().numpy()
        return p if self.task == "classification" else p[:, 1]


def _model_dict(task):
    return {
        "kind": "callable",
        "model_class": HOSTILE_MODEL,
        "task": task,
        "n_parameters": 2946,
        "device": "cpu",
        "versions": {"torch": torch.__version__},
        "sha256": "0" * 64,
    }


@pytest.fixture(scope="module")
def credit():
    df = make_credit(1500, random_state=0)
    X, y = df.drop(columns=TARGET), df[TARGET]
    net, pre = train_credit_network(X, y, epochs=25)
    Xh = X.rename(columns=RENAME)
    Xh["home"] = Xh["home"].replace({"rent": HOSTILE_CATEGORY})
    oracle = StandInOracle(net, pre)
    schema = Schema.from_frame(Xh)
    dset = distill(oracle, Xh, n=3000, schema=schema, random_state=0)
    surrogates = [DecisionTree(max_leaf_nodes=k).fit(dset) for k in (4, 8, 16)]
    fids = [evaluate(s, rows=dset) for s in surrogates]
    net_labels = oracle.query(schema.validate(Xh)).argmax(axis=1)
    accuracy = float(np.mean(net_labels == (y.to_numpy() == CLASSES[1])))
    payload = build_payload(
        model=_model_dict("classification"),
        schema=schema,
        dset=dset,
        surrogates=surrogates,
        fidelities=fids,
        meta={"title": "Credit model", "command": "pellucid explain --seed 0", "seeds": {"distill": 0}, "run_time_s": 1.5},
        ground_truth={"accuracy": accuracy, "target": TARGET, "n": len(X)},
    )
    html = render_html(payload)
    out = dict(
        X=Xh, schema=schema, dset=dset, surrogates=surrogates, fids=fids, payload=payload, html=html,
        oracle=oracle, net=net, pre=pre, accuracy=accuracy,
    )
    return out


@pytest.fixture(scope="module")
def regression(credit):
    oracle = StandInOracle(credit["net"], credit["pre"], task="regression")
    dset = distill(oracle, credit["X"], n=1000, schema=credit["schema"], random_state=1)
    surrogates = [DecisionTree(max_leaf_nodes=k).fit(dset) for k in (3, 6)]
    fids = [evaluate(s, rows=dset) for s in surrogates]
    payload = build_payload(
        model=_model_dict("regression"), schema=credit["schema"], dset=dset, surrogates=surrogates, fidelities=fids
    )
    return dict(dset=dset, surrogates=surrogates, fids=fids, payload=payload, html=render_html(payload))


def _svgs(html: str) -> list[str]:
    return re.findall(r"<svg\b.*?</svg>", html, flags=re.DOTALL)


# ---------------------------------------------------------------------------- payload
def test_payload_is_plain_json(credit):
    p = credit["payload"]
    text = json.dumps(p, allow_nan=False)
    # Round trip equal: no tuples, numpy scalars or non-string keys hide in the payload.
    assert json.loads(text) == p
    assert {"schema_version", "generated_by", "meta", "model", "data", "ground_truth", "distillation", "surrogates", "recommended"} <= set(p)
    assert p["schema_version"] == SCHEMA_VERSION == "2.5"
    assert {"pellucid", "python", "libraries"} <= set(p["generated_by"])
    assert {"id", "created", "host", "timings"} <= set(p["run"])


def test_payload_data_and_distillation_come_from_the_objects(credit):
    p, schema, dset = credit["payload"], credit["schema"], credit["dset"]
    assert p["data"]["schema"] == json.loads(json.dumps(schema.to_dict()))
    assert p["data"]["n_rows"] == len(credit["X"])
    assert p["distillation"]["n_holdout"] == int(dset.is_holdout.sum())
    assert p["distillation"]["n_queries"] == len(dset)
    assert p["ground_truth"]["accuracy"] == credit["accuracy"]
    assert p["model"]["model_class"] == HOSTILE_MODEL


def test_each_surrogate_carries_its_own_fidelity(credit):
    p = credit["payload"]
    assert len(p["surrogates"]) == len(credit["surrogates"])
    for entry, s, f in zip(p["surrogates"], credit["surrogates"], credit["fids"], strict=True):
        assert entry["fidelity"]["agreement"] == f.agreement
        assert entry["fidelity"]["agreement_ci"] == list(f.agreement_ci)
        assert entry["fidelity"]["macro_f1"] == f.macro_f1
        assert entry["complexity"] == s.complexity()
        assert entry["params"]["max_leaf_nodes"] == s.max_leaf_nodes
        assert len(entry["rules"]) == s.rules_.n_rules
    # Surrogates of one kind get labels that tell them apart: the parameter they differ in.
    for entry, s in zip(p["surrogates"], credit["surrogates"], strict=True):
        assert entry["label"] == f"{s.describe()['name']} (max_leaf_nodes={s.max_leaf_nodes})"


@pytest.mark.parametrize("copies", [2, 3])
def test_identical_surrogates_are_all_numbered(credit, copies):
    """Fitted twice (or thrice) with the same settings: every copy gets its number."""
    s, f = credit["surrogates"][0], credit["fids"][0]
    p = build_payload(
        model={}, schema=credit["schema"], dset=credit["dset"], surrogates=[s] * copies, fidelities=[f] * copies
    )
    name = s.describe()["name"]
    assert [e["label"] for e in p["surrogates"]] == [f"{name} #{k}" for k in range(1, copies + 1)]


@pytest.mark.parametrize("value", [None, "abc", "8", True, 8.5, -1, [8]])
def test_bad_max_rules_recommended_is_a_parameter_error(credit, value):
    kw = dict(model={}, schema=credit["schema"], dset=credit["dset"], surrogates=credit["surrogates"], fidelities=credit["fids"])
    with pytest.raises(ParameterError, match="max_rules_recommended") as err:
        build_payload(meta={"max_rules_recommended": value}, **kw)
    assert repr(value) in str(err.value)


def test_rule_numbers_are_measured_on_the_holdout(credit):
    """Coverage and precision per rule, recomputed here from the held-out rows."""
    p, dset = credit["payload"], credit["dset"]
    hold = dset.holdout
    net_labels = hold.labels
    for entry, s in zip(p["surrogates"], credit["surrogates"], strict=True):
        for r_json, rule in zip(entry["rules"], s.rules_.rules, strict=True):
            assert r_json["text"] == rule.text()
            assert r_json["conditions"] == [json.loads(json.dumps(c.to_dict())) for c in rule.conditions]
            mask = rule.apply(hold.rows)
            assert r_json["coverage"] == pytest.approx(mask.mean())
            assert r_json["n_covered"] == int(mask.sum())
            if mask.any():
                assert r_json["precision"] == pytest.approx(np.mean(net_labels[mask] == rule.outcome))
            assert r_json["support"] == pytest.approx(rule.support)
        assert entry["default"]["outcome"] == s.rules_.default.outcome


def test_tree_entry_mirrors_the_fitted_tree(credit):
    for entry, s in zip(credit["payload"]["surrogates"], credit["surrogates"], strict=True):
        nodes = entry["tree"]["nodes"]
        assert [n["id"] for n in nodes] == [n.id for n in s.nodes_]
        leaves = [n for n in nodes if n["left"] is None]
        assert sorted(n["rule_index"] for n in leaves) == list(range(s.rules_.n_rules))
        assert sum(n["support"] for n in leaves) == pytest.approx(1.0)
        # Holdout coverage of each rule, recomputed here from the fitted rules and the rows.
        coverage = s.rules_.coverage_matrix(credit["dset"].holdout.rows).mean(axis=0)
        for n_json, n in zip(nodes, s.nodes_, strict=True):
            if n.condition is not None:
                assert n_json["condition"]["text"] == n.condition.text()
                assert n_json["negation"]["text"] == n.negation.text()
                assert n_json["coverage"] is None
            else:
                assert n_json["outcome"] == s.rules_.rules[n.rule_index].outcome
                assert n_json["coverage"] == pytest.approx(coverage[n.rule_index])


def test_tree_leaves_take_outcome_and_coverage_from_their_rule(credit):
    """A leaf is a rule: the payload copies the rule's entry, it never works the leaf out
    again. Here the nodes' class distributions are reversed, so a leaf outcome recomputed
    from them would differ from its rule's."""
    s, f = credit["surrogates"][1], credit["fids"][1]

    class Reversed:
        rules_, task_, classes_ = s.rules_, s.task_, s.classes_
        nodes_ = [dataclasses.replace(n, value=tuple(reversed(n.value))) for n in s.nodes_]

        def complexity(self):
            return s.complexity()

        def describe(self):
            return s.describe()

    p = build_payload(model={}, schema=credit["schema"], dset=credit["dset"], surrogates=[Reversed()], fidelities=[f])
    entry = p["surrogates"][0]
    leaves = [n for n in entry["tree"]["nodes"] if n["rule_index"] is not None]
    assert leaves
    for leaf in leaves:
        rule = entry["rules"][leaf["rule_index"]]
        assert leaf["outcome"] == rule["outcome"] == s.rules_.rules[leaf["rule_index"]].outcome
        assert leaf["coverage"] == rule["coverage"]


def test_surrogate_without_nodes_has_no_tree(credit):
    s, f = credit["surrogates"][0], credit["fids"][0]

    class NoTree:  # a rule surrogate: rules_, complexity, describe, no nodes_
        rules_, task_, classes_ = s.rules_, s.task_, s.classes_

        def complexity(self):
            return s.complexity()

        def describe(self):
            return {"name": "rule_set", "type": "NoTree", "params": {}}

    p = build_payload(model={}, schema=credit["schema"], dset=credit["dset"], surrogates=[NoTree()], fidelities=[f])
    assert p["surrogates"][0]["tree"] is None
    html = render_html(p)
    assert "not a tree" in html


def test_mismatched_surrogates_and_fidelities_are_refused(credit):
    s, f = credit["surrogates"], credit["fids"]
    kw = dict(model={}, schema=credit["schema"], dset=credit["dset"])
    with pytest.raises(ParameterError, match="fidelities"):
        build_payload(surrogates=s, fidelities=f[:2], **kw)
    with pytest.raises(ParameterError, match="another surrogate|out of order"):
        build_payload(surrogates=s[:2], fidelities=[f[1], f[0]], **kw)


def test_nan_and_numpy_become_plain_json(credit):
    p = build_payload(
        model={"n_parameters": np.int64(7), "score": np.float32(0.5), "bad": float("nan"), "shape": (2, 3), "inf": np.inf},
        schema=credit["schema"],
        dset=credit["dset"],
        surrogates=[],
        fidelities=[],
        ground_truth={"accuracy": np.float64("nan"), "target": TARGET},
    )
    json.dumps(p, allow_nan=False)
    assert p["model"] == {"n_parameters": 7, "score": 0.5, "bad": None, "shape": [2, 3], "inf": None}
    assert type(p["model"]["n_parameters"]) is int
    assert p["ground_truth"]["accuracy"] is None
    assert p["recommended"] is None
    render_html(p)  # a report with no surrogate still renders


# ---------------------------------------------------------------------------- recommended
def _entry(agreement=None, n_rules=4, r2=None, task="classification"):
    return {"fidelity": {"task": task, "agreement": agreement, "r2": r2}, "complexity": {"n_rules": n_rules}}


def test_recommended_prefers_best_readable_surrogate():
    cands = [_entry(0.97, 40), _entry(0.90, 8), _entry(0.92, 12), _entry(0.95, 13)]
    assert recommend(cands, max_rules=12) == 2
    assert recommend(cands, max_rules=8) == 1
    assert recommend(cands, max_rules=100) == 0


def test_recommended_falls_back_to_best_overall():
    assert recommend([_entry(0.90, 30), _entry(0.93, 20), _entry(0.91, 15)], max_rules=12) == 1


def test_recommended_breaks_ties_by_fewer_rules_and_ignores_missing_scores():
    assert recommend([_entry(0.9, 8), _entry(0.9, 5), _entry(None, 2)], max_rules=12) == 1
    assert recommend([], max_rules=12) is None


def test_recommended_uses_r2_for_regression():
    cands = [_entry(r2=0.5, n_rules=3, task="regression"), _entry(r2=0.8, n_rules=4, task="regression"), _entry(r2=0.9, n_rules=30, task="regression")]
    assert recommend(cands, max_rules=12) == 1


def test_recommended_honours_meta_limit(credit):
    kw = dict(model={}, schema=credit["schema"], dset=credit["dset"], surrogates=credit["surrogates"], fidelities=credit["fids"])
    for limit in (4, 8, 100):
        p = build_payload(meta={"max_rules_recommended": limit}, **kw)
        small = [i for i, s in enumerate(credit["surrogates"]) if s.rules_.n_rules <= limit]
        best = max(credit["fids"][i].agreement for i in small)
        chosen = p["recommended"]
        assert chosen in small
        assert credit["fids"][chosen].agreement == best


# ---------------------------------------------------------------------------- HTML
def test_html_shows_rules_and_fidelity(credit):
    html, p = credit["html"], credit["payload"]
    best = credit["surrogates"][p["recommended"]]
    for rule in best.rules_.rules:
        assert str(escape(rule.text())) in html
        for c in rule.conditions:
            assert str(escape(c.text())) in html
    for f in credit["fids"]:
        assert f"{100 * f.agreement:.1f}%" in html
        lo, hi = f.agreement_ci
        assert f"{100 * lo:.1f}%–{100 * hi:.1f}%" in html
    assert f"{100 * credit['accuracy']:.1f}%" in html
    for anchor in ("summary", "model", "data", "distillation", "surrogates", "rules", "tree", "ground-truth", "reproducibility"):
        assert f'id="{anchor}"' in html and f'href="#{anchor}"' in html
    assert "pellucid explain --seed 0" in html
    assert "@media print" in html
    # The rule texts show p and "covers"; the note under them explains both.
    assert "p is the share" in html and '"covers" is the share' in html


def test_rules_preamble_names_the_features_that_had_missing_values(credit):
    html, p, schema = credit["html"], credit["payload"], credit["schema"]
    had = [f.name for f in schema if f.n_missing > 0]
    never = [f.name for f in schema if f.n_missing == 0]
    assert had and never
    best = p["surrogates"][p["recommended"]]
    note = best["missing_values"]
    assert note["features"] == had
    assert str(escape(note["text"])) in html
    assert all(name in note["text"] for name in had) and not any(name in note["text"] for name in never)
    # No rule of any surrogate speaks of a missing value of a feature that never had one.
    for s in p["surrogates"]:
        for r in s["rules"]:
            for c in r["conditions"]:
                assert not (c["feature"] in never and c["missing"]), c["text"]


def _only_our_script(html):
    """The page runs one script: report.js as shipped (sorting, folding), nothing from data."""
    from pathlib import Path

    import pellucid.reports

    assert html.lower().count("<script") == 1
    body = html.split("<script>", 1)[1].split("</script>", 1)[0]
    shipped = (Path(pellucid.reports.__file__).parent / "templates" / "report.js").read_text(encoding="utf-8")
    assert body.strip() == shipped.strip()


def test_hostile_names_are_escaped_everywhere(credit):
    html = credit["html"]
    for s in HOSTILE:
        assert s not in html, f"raw {s!r} in the page"
        assert str(escape(s)) in html, f"{s!r} not shown as text"
    # Only our own markup: one script, pellucid's own, and no event handler in any tag.
    _only_our_script(html)
    assert not re.search(r"<[^>]*\son\w+\s*=", html, flags=re.IGNORECASE)
    svgs = _svgs(html)
    assert len(svgs) >= 4
    for svg in svgs:
        assert "<script" not in svg.lower()
    # The tree draws the hostile feature as SVG text (matplotlib draws text as outlines, so
    # only the tree can carry it): present, escaped, parsed back as the literal name.
    if HAS_DOT:
        tree = _svgs(_tree_section(html))[0]
        assert HOSTILE_FEATURE not in tree and str(escape(HOSTILE_FEATURE)) in tree
        assert any(HOSTILE_FEATURE in (t.text or "") for t in ET.fromstring(tree).iter() if t.tag.endswith("text"))


def test_page_is_self_contained(credit):
    html = credit["html"]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html, flags=re.IGNORECASE)
    assert "@import" not in html
    assert "<link" not in html.lower()
    # One stylesheet, the page's own: no figure brings a <style> whose rules reach the page.
    assert html.count("<style") == 1
    # SVGs are inlined bare: no prolog, DOCTYPE or comment may survive.
    assert "<?xml" not in html and "<!--" not in html
    assert html.count("<!DOCTYPE") == 1 and html.startswith("<!DOCTYPE html>")
    for svg in _svgs(html):
        ET.fromstring(svg)  # well-formed


def test_figure_ids_do_not_collide(credit):
    ids = re.findall(r'\sid="([^"]+)"', credit["html"])
    # Glyph definitions repeat across matplotlib figures only with their figure's prefix.
    assert len(ids) == len(set(ids))


def test_render_is_deterministic(credit):
    assert render_html(credit["payload"]) == credit["html"]


def test_regression_report(regression):
    p, html = regression["payload"], regression["html"]
    json.dumps(p, allow_nan=False)
    best = max(range(2), key=lambda i: regression["fids"][i].r2)
    assert p["recommended"] == best
    for entry, f in zip(p["surrogates"], regression["fids"], strict=True):
        assert entry["fidelity"]["r2"] == f.r2
        assert f"{f.r2:.3f}" in html
    assert "<th class=\"num\">MAE</th>" in html and "Coverage (held-out)" in html
    # Regression rules carry no p: the page does not explain one.
    assert all(r["proba"] is None for e in p["surrogates"] for r in e["rules"])
    assert "p is the share" not in html
    assert '"covers" is the share of training rows' in html
    assert 'id="fig-per-class' not in html  # no classes, no per-class figure
    for rule in regression["surrogates"][best].rules_.rules:
        assert str(escape(rule.text())) in html


def _section(html: str, name: str) -> str:
    return html.split(f'<section id="{name}">', 1)[1].split("</section>", 1)[0]


def _with_rows(payload, rows):
    p = copy.deepcopy(payload)
    for e in p["surrogates"]:
        e["fidelity"]["rows"] = rows
    return p


def test_page_names_the_rows_fidelity_was_measured_on(credit, monkeypatch):
    monkeypatch.setattr(graphviz.Source, "pipe", _no_dot)  # the tree's text is tested elsewhere
    # Measured on rows given to evaluate(), not on the distillation's holdout.
    given = credit["X"].iloc[:400]
    fids = [evaluate(s, credit["oracle"], rows=given) for s in credit["surrogates"]]
    assert {f.rows for f in fids} == {"given"}
    p = build_payload(model={}, schema=credit["schema"], dset=credit["dset"], surrogates=credit["surrogates"], fidelities=fids)
    n_hold = len(credit["dset"].holdout.rows)
    cases = [
        (credit["payload"], "held-out rows", f"{n_hold:,} held-out rows"),
        (p, "the rows given", f"the {len(given):,} rows given"),
        (_with_rows(credit["payload"], "all"), "all rows (no holdout)", f"all {n_hold:,} rows (no holdout)"),
    ]
    for payload, words, counted in cases:
        html = render_html(payload)
        summary, surrogates, rules = (_section(html, k) for k in ("summary", "surrogates", "rules"))
        assert counted in summary  # the headline: "agreement with the network on ..."
        assert words in surrogates and counted in rules
        if words != "held-out rows":
            for part in (summary, surrogates, rules):
                assert "held-out" not in part and "Holdout" not in part


def _no_dot(self, *a, **k):
    raise graphviz.ExecutableNotFound(["dot"])


# ---------------------------------------------------------------------------- tree drawing
def _tree_section(html: str) -> str:
    return html.split('<section id="tree">', 1)[1].split("</section>", 1)[0]


@pytest.mark.skipif(not HAS_DOT, reason="graphviz `dot` is not installed here")
def test_tree_is_drawn_when_dot_exists(credit):
    p = credit["payload"]
    best = p["surrogates"][p["recommended"]]
    svg = tree_svg(best["tree"], best["classes"])
    assert svg is not None and svg.startswith("<svg")
    section = _tree_section(credit["html"])
    assert "<svg" in section and DOT_MISSING not in section
    texts = [t.text or "" for t in ET.fromstring(svg).iter() if t.tag.endswith("text")]
    # Every leaf names its rule; every rule of the tree is drawn.
    for j in range(len(best["rules"])):
        assert f"Rule {j + 1}" in texts


@pytest.mark.skipif(not HAS_DOT, reason="graphviz `dot` is not installed here")
def test_dot_draws_labels_literally():
    hostile = f'{QUOTED_FEATURE} <= 3 and {HOSTILE_FEATURE} & "x"'
    tree = {
        "nodes": [
            {"id": 0, "depth": 0, "left": 1, "right": 2, "condition": {"text": hostile}, "negation": None,
             "value": [0.5, 0.5], "support": 1.0, "rule_index": None},
            {"id": 1, "depth": 1, "left": None, "right": None, "condition": None, "negation": None,
             "value": [0.9, 0.1], "outcome": HOSTILE_CATEGORY, "support": 0.5, "coverage": 0.4, "rule_index": 0},
            {"id": 2, "depth": 1, "left": None, "right": None, "condition": None, "negation": None,
             "value": [0.2, 0.8], "support": 0.5, "coverage": 0.6, "rule_index": 1},
        ]
    }
    svg = tree_svg(tree, classes=["a", HOSTILE_CLASS])
    for s in HOSTILE:
        assert s not in svg
    drawn = " ".join(t.text or "" for t in ET.fromstring(svg).iter() if t.tag.endswith("text"))
    assert hostile in drawn  # quotes, backslash-N and angle brackets as written
    assert f"→ {HOSTILE_CATEGORY}" in drawn and f"→ {HOSTILE_CLASS}" in drawn


def _one_split_tree(condition_text: str) -> dict:
    return {
        "nodes": [
            {"id": 0, "depth": 0, "left": 1, "right": 2, "condition": {"text": condition_text}, "negation": None,
             "value": [0.5, 0.5], "support": 1.0, "rule_index": None},
            {"id": 1, "depth": 1, "left": None, "right": None, "condition": None, "negation": None,
             "value": [0.9, 0.1], "outcome": "a", "support": 0.5, "coverage": 0.4, "rule_index": 0},
            {"id": 2, "depth": 1, "left": None, "right": None, "condition": None, "negation": None,
             "value": [0.2, 0.8], "outcome": "b", "support": 0.5, "coverage": 0.6, "rule_index": 1},
        ]
    }


def _drawn(svg: str) -> str:
    return " ".join(t.text or "" for t in ET.fromstring(svg).iter() if t.tag.endswith("text"))


@pytest.mark.skipif(not HAS_DOT, reason="graphviz `dot` is not installed here")
def test_dot_draws_character_entities_literally():
    """dot decodes entities in labels: a category named ``R&amp;D`` must not become ``R&D``."""
    for category in ("R&amp;D", "&#60;b&#62;", "A & B"):
        cond = Condition("dept", "in", (category,), False, "categorical")
        svg = tree_svg(_one_split_tree(cond.text()))
        assert cond.text() in _drawn(svg)
        # In the SVG source, the name's own text escaped once more: R&amp;amp;D.
        assert str(escape(cond.text())) in svg


@pytest.mark.skipif(not HAS_DOT, reason="graphviz `dot` is not installed here")
def test_drawn_text_is_not_rewritten_by_id_prefixing():
    svg = tree_svg(_one_split_tree("url(#foo) <= 3 and href=\"#bar\""))
    assert 'url(#foo) <= 3 and href="#bar"' in _drawn(svg)
    assert "tree-foo" not in svg and "tree-bar" not in svg


def test_no_dot_on_path_gives_rules_only(credit, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `dot` to find
    p = credit["payload"]
    best = p["surrogates"][p["recommended"]]
    assert tree_svg(best["tree"], best["classes"]) is None
    html = render_html(p)
    section = _tree_section(html)
    assert DOT_MISSING in section and "<svg" not in section
    # The rules are still all there.
    for r in best["rules"]:
        assert str(escape(r["text"])) in html


def test_executable_not_found_gives_rules_only(credit, monkeypatch):
    def missing(self, *a, **k):
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Source, "pipe", missing)
    html = render_html(credit["payload"])
    assert "graphviz `dot` was not found; the tree is shown as rules only" in html
    assert '<svg id="tree' not in html and "<svg" not in _tree_section(html)


def test_dot_output_is_stripped_and_prefixed(credit, monkeypatch):
    fake = (
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
        '<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        "<!-- Generated by graphviz version 2.43.0 -->\n"
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10pt" height="10pt">'
        '<!-- n0 --><g id="graph0" class="graph"><title>tree</title><text>x</text></g></svg>\n'
    )
    seen = {}

    def pipe(self, *a, **k):
        seen["source"] = self.source
        return fake

    monkeypatch.setattr(graphviz.Source, "pipe", pipe)
    best = credit["payload"]["surrogates"][0]
    svg = tree_svg(best["tree"], best["classes"])
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<?xml" not in svg and "DOCTYPE" not in svg and "<!--" not in svg
    assert 'id="tree-graph0"' in svg
    # What dot was given: every label quoted, the hostile feature inside a quoted string.
    labels = re.findall(r"label=(.)", seen["source"])
    assert labels and set(labels) == {'"'}
    assert HOSTILE_FEATURE in seen["source"]  # quoted text, not an HTML-like <label>
    assert "label=<" not in seen["source"]


def test_ids_and_references_are_prefixed_text_is_not():
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        '<defs><clipPath id="c"><rect/></clipPath><path id="g"/></defs>'
        '<g clip-path="url(#c)" style="clip-path: url(#c)"><use xlink:href="#g"/><use href="#g"/></g>'
        '<a href="#missing"/><text>url(#c) and #g</text></svg>'
    )
    root = ET.fromstring(clean_svg(svg, "fig"))
    els = list(root.iter())
    assert {e.get("id") for e in els if e.get("id")} == {"fig-c", "fig-g"}
    g = next(e for e in els if e.tag.endswith("}g"))
    assert g.get("clip-path") == "url(#fig-c)" and g.get("style") == "clip-path: url(#fig-c)"
    uses = [e for e in els if e.tag.endswith("}use")]
    assert uses[0].get("{http://www.w3.org/1999/xlink}href") == "#fig-g" and uses[1].get("href") == "#fig-g"
    assert next(e for e in els if e.tag.endswith("}a")).get("href") == "#missing"  # no such id
    assert next(e for e in els if e.tag.endswith("}text")).text == "url(#c) and #g"


def test_style_elements_are_dropped_and_refused():
    svg = '<svg xmlns="http://www.w3.org/2000/svg"><style>@import url(http://x/a.css);</style><g/></svg>'
    with pytest.raises(UnsafeSVGError, match="style"):
        check_svg(svg)
    cleaned = clean_svg(svg, "x")
    assert "<style" not in cleaned and "@import" not in cleaned and "http://x" not in cleaned
    for bad in (
        '<svg xmlns="http://www.w3.org/2000/svg"><g style="fill: url(http://x/a)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g fill="url(#a) url(//x/b)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g style="fill: u\\72l(http://x/a)"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><g>@import "x.css";</g></svg>',
    ):
        with pytest.raises(UnsafeSVGError):
            check_svg(bad)
    # Text that is drawn is only text: a feature may be called anything.
    check_svg('<svg xmlns="http://www.w3.org/2000/svg"><text>@import url(http://x)</text></svg>')


def test_unsafe_svg_is_refused(monkeypatch, credit):
    def pipe(self, *a, **k):
        return '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'

    monkeypatch.setattr(graphviz.Source, "pipe", pipe)
    with pytest.raises(UnsafeSVGError):
        tree_svg(credit["payload"]["surrogates"][0]["tree"])
    for bad in (
        '<svg xmlns="http://www.w3.org/2000/svg"><g onclick="x()"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://e.com/a.png"/></svg>',
        '<svg xmlns="http://www.w3.org/2000/svg"><foreignObject/></svg>',
    ):
        with pytest.raises(UnsafeSVGError):
            clean_svg(bad, "x")


def test_dot_quoting():
    assert quote('a "b" \\N') == '"a \\"b\\" \\\\N"'
    assert quote("<b>x</b>") == '"<b>x</b>"'  # quoted: never an HTML-like label
    assert quote("one\ntwo") == '"one\\ntwo"'  # our own line break
    assert quote("tab\there\x00") == '"tab here "'
    tree = {"nodes": [{"id": 0, "left": None, "right": None, "condition": None, "value": 1.25, "support": 1.0, "rule_index": 0}]}
    assert 'label="Rule 1\\n→ 1.25\\ntrain 100.0%"' in tree_dot(tree)


# ---------------------------------------------------------------------------- figures
def test_figures_are_inline_svg(credit):
    p = credit["payload"]
    best = p["surrogates"][p["recommended"]]
    for svg in (
        figures.agreement_figure(p["surrogates"], p["recommended"]),
        figures.per_class_figure(best),
        figures.rule_figure(best),
        figures.distillation_figure(p["distillation"]),
    ):
        assert svg.startswith("<svg") and svg.endswith("</svg>")
        assert "<?xml" not in svg and "<!DOCTYPE" not in svg and "<!--" not in svg and "<metadata" not in svg
    assert figures.per_class_figure({"fidelity": {"per_class": []}}) is None
    assert figures.rule_figure({"rules": []}) is None


def _drawn_figure(monkeypatch, draw):
    """The matplotlib Figure a figure function made (its text is outlines in the SVG)."""
    made = []
    monkeypatch.setattr(figures, "_to_svg", lambda fig, prefix: made.append(fig) or "<svg/>")
    draw()
    return made[0].axes[0]


@pytest.mark.parametrize("n_outcomes", [2, 8, 9, 12])
def test_rule_figure_axis_follows_the_task(monkeypatch, n_outcomes):
    rules = [{"outcome": f"class {k}", "coverage": 0.05 * (k + 1), "precision": 0.9} for k in range(n_outcomes)]
    ax = _drawn_figure(monkeypatch, lambda: figures.rule_figure({"rules": rules, "fidelity": {"task": "classification", "rows": "holdout"}}))
    assert ax.get_ylabel() == "precision on held-out rows"
    assert isinstance(ax.yaxis.get_major_formatter(), matplotlib.ticker.PercentFormatter)
    # A legend only while every outcome has its own colour.
    assert (ax.get_legend() is not None) == (n_outcomes <= len(figures._CLASS_COLOURS))
    reg = [{"outcome": 1.5 * k, "coverage": 0.1, "mae": 0.2} for k in range(n_outcomes)]
    ax = _drawn_figure(monkeypatch, lambda: figures.rule_figure({"rules": reg, "fidelity": {"task": "regression", "rows": "given"}}))
    assert ax.get_ylabel() == "mean absolute error on the rows given"
    assert not isinstance(ax.yaxis.get_major_formatter(), matplotlib.ticker.PercentFormatter)
    assert ax.get_legend() is None


def test_rule_labels_never_print_over_one_another(monkeypatch):
    """Rules whose points almost coincide share one label ("R2, R4") instead of two labels
    drawn over each other; every rule is named once and no two labels' boxes overlap."""
    rules = [{"outcome": "bad", "coverage": c, "precision": p}
             for c, p in [(0.125, 0.95), (0.040, 0.975), (0.016, 0.87), (0.043, 0.968), (0.090, 0.40)]]
    ax = _drawn_figure(monkeypatch, lambda: figures.rule_figure({"rules": rules, "fidelity": {"task": "classification",
                                                                                             "rows": "holdout"}}))
    texts = [t for t in ax.texts]
    labels = [t.get_text() for t in texts]
    assert sorted(x for lab in labels for x in lab.split(", ")) == [f"R{i}" for i in range(1, 6)]
    assert "R2, R4" in labels
    fig = ax.figure
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in texts]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])


def test_figures_bring_no_stylesheet(credit):
    p = credit["payload"]
    best = p["surrogates"][p["recommended"]]
    for svg in (figures.agreement_figure(p["surrogates"], p["recommended"]), figures.rule_figure(best)):
        root = ET.fromstring(svg)
        assert not [e for e in root.iter() if e.tag.endswith("}style")]
        # What matplotlib's stylesheet said, kept inside the figure.
        assert root.get("stroke-linejoin") == "round"


def test_figure_text_is_never_mathtext():
    # An unbalanced TeX command would make matplotlib's mathtext parser fail.
    per_class = [{"class": "cost $\\frac{", "agreement": 0.5, "precision": 0.6}, {"class": "$x$", "agreement": None, "precision": 1.0}]
    assert figures.per_class_figure({"fidelity": {"per_class": per_class}}).startswith("<svg")


# ---------------------------------------------------------------------------- build
def test_build_writes_both_files(credit, tmp_path):
    out = tmp_path / "new" / "report"
    html_path, json_path = build(credit["payload"], out)
    assert html_path == out / "report.html" and json_path == out / "report.json"
    assert json.loads(json_path.read_text(encoding="utf-8")) == credit["payload"]
    assert html_path.read_text(encoding="utf-8") == credit["html"]


def test_build_refuses_nan(credit, tmp_path):
    bad = dict(credit["payload"], meta={"run_time_s": math.nan})
    with pytest.raises(ValueError):
        build(bad, tmp_path / "out")
    assert not (tmp_path / "out" / "report.html").exists()


# ---------------------------------------------------------------------------- frontier, stability, disagreement
# A second, cheaper setting: a callable network on three features, one of them named like
# markup, a frontier of trees, a test-local additive surrogate and a candidate that fails.
IMG_FEATURE = "<img src=x onerror=alert(1)>"
HOSTILE_CANDIDATE = "<b onmouseover=alert(2)>points</b>"
HOSTILE_ERROR = "<script>alert('fit')</script>"


class PointsScore(Surrogate):
    """An additive model on three fixed rules and a linear term, weights from a logistic
    regression: enough to exercise how the report shows additive models and scorecards."""

    name = "points_score"
    size_param = "max_terms"

    def __init__(self, max_terms: int = 3, scale: float = 1.0, random_state: int | None = 0) -> None:
        self.max_terms = max_terms
        self.scale = scale
        self.random_state = random_state

    def _fit(self, train):
        from sklearn.linear_model import LogisticRegression

        from pellucid.extraction import AdditiveRules, LinearTerm, Rule

        X = train.rows
        rules = [
            Rule((Condition("home", "in", ("rent",), False, "categorical"),), None),
            Rule((Condition(IMG_FEATURE, ">", 0.0),), None),
            Rule((Condition("z", "<=", -1.0),), None),
        ][: self.max_terms]
        fill = float(X["z"].median())
        M = np.column_stack([r.apply(X) for r in rules] + [X["z"].fillna(fill).to_numpy()]).astype(float)
        lr = LogisticRegression(max_iter=2000).fit(M, train.outputs.argmax(axis=1))
        w = lr.coef_[0]
        classes = tuple(self.classes_)
        rules = [Rule(r.conditions, classes[int(w[k] > 0)], None, float(r.apply(X).mean())) for k, r in enumerate(rules)]
        self.rules_ = AdditiveRules(
            tuple(rules),
            tuple((float(x),) for x in w[:-1]),
            (float(lr.intercept_[0]),),
            (LinearTerm("z", (float(w[-1]),), fill),),
            link="logistic",
            task="classification",
            classes=classes,
            scale=self.scale,
            offset=600.0 if self.scale != 1.0 else 0.0,
        )


class FailingCandidate(Surrogate):
    name = "failing"
    size_param = "max_rules"

    def __init__(self, max_rules: int = 4, random_state: int | None = 0) -> None:
        self.max_rules = max_rules
        self.random_state = random_state

    def _fit(self, train):
        raise RuntimeError(f"{HOSTILE_ERROR} at {self.max_rules}")


def _img_table(n=900, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.normal(size=n)
    z[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {IMG_FEATURE: rng.uniform(-5, 5, n), "z": z, "home": rng.choice(["own", "rent", "<i>other</i>"], n)}
    )


def _img_network(d):
    s = 0.9 * d[IMG_FEATURE].to_numpy() + 0.8 * np.nan_to_num(d["z"].to_numpy()) + np.where(d["home"] == "rent", 1.5, 0.0)
    p = 1 / (1 + np.exp(-s))
    return np.column_stack([1 - p, p])


@pytest.fixture(scope="module")
def extended():
    from pellucid.fidelity import disagreement, frontier, stability
    from pellucid.oracle import Oracle

    df = _img_table()
    oracle = Oracle(_img_network, task="classification", classes=["good", HOSTILE_CLASS])
    dset = distill(oracle, df, n=1200, random_state=0)
    front = frontier(
        dset,
        candidates=[DecisionTree, (HOSTILE_CANDIDATE, PointsScore), FailingCandidate],
        sizes=(2, 4, 8),
        training="distilled",
        verbose=0,
    )
    fitted = [e for e in front.entries if e.ok]
    surrogates = [e.surrogate for e in fitted]
    fids = [e.fidelity for e in fitted]
    card = PointsScore(scale=20 / np.log(2)).fit(dset)
    card_fid = evaluate(card, rows=dset)
    card_fid.complexity["fit_seconds"] = 0.25
    surrogates.append(card)
    fids.append(card_fid)
    stabs = {0: stability(surrogates[0], dset, n_boot=3, verbose=0)}
    kw = dict(model={"model_class": HOSTILE_MODEL}, schema=dset.schema, dset=dset, surrogates=surrogates, fidelities=fids)
    rec = build_payload(**kw)["recommended"]
    dis = disagreement(surrogates[rec], dset)
    payload = build_payload(**kw, frontier=front, stability=stabs, disagreement=dis)
    # The scorecard alone, recommended, with its own disagreement.
    card_payload = build_payload(
        model={}, schema=dset.schema, dset=dset, surrogates=[card], fidelities=[card_fid], disagreement=disagreement(card, dset)
    )
    plain = PointsScore().fit(dset)
    plain_payload = build_payload(model={}, schema=dset.schema, dset=dset, surrogates=[plain], fidelities=[evaluate(plain, rows=dset)])
    return dict(
        dset=dset, front=front, surrogates=surrogates, fids=fids, stabs=stabs, dis=dis, kw=kw, payload=payload,
        html=render_html(payload), card=card, card_fid=card_fid, card_payload=card_payload,
        card_html=render_html(card_payload), plain=plain, plain_payload=plain_payload, plain_html=render_html(plain_payload),
    )


def test_extended_payload_is_plain_json(extended):
    for key in ("payload", "card_payload", "plain_payload"):
        p = extended[key]
        assert json.loads(json.dumps(p, allow_nan=False)) == p
        assert p["schema_version"] == SCHEMA_VERSION == "2.5"


def test_payload_frontier_points_at_the_listed_surrogates(extended):
    p, front, surs = extended["payload"], extended["front"], extended["surrogates"]
    pf = p["frontier"]
    assert len(pf["entries"]) == len(front.entries)
    assert pf["pareto"] == front.to_dict()["pareto"] and pf["n_failed"] == len(front.failed) == 3
    for e, obj in zip(pf["entries"], front.entries, strict=True):
        expected = next((i for i, s in enumerate(surs) if s is obj.surrogate), None) if obj.surrogate is not None else None
        assert e["surrogate_index"] == expected
        assert "fit_seconds" not in e  # a duration: in the run block, under the entry's path
    paths = p["run"]["timings"]["paths"]
    for k, obj in enumerate(front.entries):
        assert paths.get(f"/frontier/entries/{k}/fit_seconds") == obj.fit_seconds
    # Not given: the entry that fitted the recommended surrogate is the selected one.
    assert pf["selected_by"] == "recommended"
    assert pf["entries"][pf["selected"]]["surrogate_index"] == p["recommended"]


def test_this_run_says_which_fit_times_belong_to_a_larger_fit(extended):
    """A size read off one fit at the candidate's largest size has no time of its own: the
    list of durations says so, where a 0 would read as "<1 ms"."""
    html, front = extended["html"], extended["front"]
    read_off = [k for k, e in enumerate(front.entries) if e.ok and e.fit_seconds == 0]
    timed = [k for k, e in enumerate(front.entries) if e.ok and e.fit_seconds]
    assert read_off and timed

    def shown(k: int) -> str:
        return re.search(rf'/frontier/entries/{k}/fit_seconds</td><td class="num">([^<]*)<', html).group(1)

    assert all(shown(k).startswith("in a larger fit") for k in read_off)
    assert not any(shown(k).startswith("in a larger fit") or shown(k) == "<1 ms" for k in timed)
    assert "a size read off one fit of the candidate at its largest size" in html


def test_payload_stability_fit_time_and_disagreement(extended):
    p, surs, front = extended["payload"], extended["surrogates"], extended["front"]
    entries = p["surrogates"]
    assert entries[0]["stability"] == json.loads(json.dumps(extended["stabs"][0].to_dict()))
    assert all(e["stability"] is None for e in entries[1:])
    timed = {id(e.surrogate): e.fit_seconds for e in front.entries if e.ok}
    paths = p["run"]["timings"]["paths"]
    for i, s in enumerate(surs[:-1]):
        assert paths[f"/surrogates/{i}/fit_seconds"] == timed[id(s)]  # timed by the frontier
    assert paths[f"/surrogates/{len(surs) - 1}/fit_seconds"] == 0.25  # from the fidelity's complexity
    assert all("fit_seconds" not in e for e in entries)
    assert p["disagreement"]["surrogate_index"] == p["recommended"]
    assert p["disagreement"]["n_disagree"] == extended["dis"]["n_disagree"]
    # The additive model's parts: weights per rule, points for the scorecard only.
    card = entries[-1]
    rs = extended["card"].rules_
    assert card["additive"]["scorecard"] and card["additive"]["link"] == "logistic"
    assert [r["weights"] for r in card["rules"]] == [list(w) for w in rs.weights]
    assert [r["points"] for r in card["rules"]] == [[int(round(rs.scale * w[0]))] for w in rs.weights]
    assert card["additive"]["base_points"] == [int(round(rs.offset + rs.scale * rs.intercept[0]))]
    assert entries[0]["additive"] is None


def test_frontier_selection_can_be_given(extended):
    kw, front = extended["kw"], extended["front"]
    p = build_payload(**kw, frontier=front, frontier_selected=front.entries[1])
    assert (p["frontier"]["selected"], p["frontier"]["selected_by"]) == (1, "argument")
    p = build_payload(**kw, frontier=front, meta={"frontier_selected": 2})
    assert (p["frontier"]["selected"], p["frontier"]["selected_by"]) == (2, "meta")
    for bad in (99, "first", dataclasses.replace(front.entries[0])):
        with pytest.raises(ParameterError, match="frontier_selected"):
            build_payload(**kw, frontier=front, frontier_selected=bad)
    for bad in ({7: extended["stabs"][0]}, {"0": extended["stabs"][0]}, {0: 0.5}):
        with pytest.raises(ParameterError, match="stability"):
            build_payload(**kw, stability=bad)


def test_html_shows_the_frontier(extended):
    p, html = extended["payload"], extended["html"]
    section = _section(html, "frontier")
    assert 'id="fig-frontier' in section and len(_svgs(section)) == 1
    table = section.split('<table class="frontier sortable">', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    rows = body.split("<tr")[1:]
    assert len(rows) == len(p["frontier"]["entries"])
    for row, e in zip(rows, p["frontier"]["entries"], strict=True):
        assert str(escape(e["candidate"])) in row
        if e["error"] is None:
            assert f"{100 * e['score']:.1f}%" in row
            lo, hi = e["fidelity"]["agreement_ci"]
            assert f"{100 * lo:.1f}%–{100 * hi:.1f}%" in row
            assert (">✓<" in row) == e["pareto"]
        else:
            assert str(escape(e["error"])) in row and "✓" not in row
    assert section.count("selected</span>") == 1
    assert 'href="#frontier"' in html


def test_comparison_table_shows_stability_and_what_each_was_fitted_on(extended):
    p = extended["payload"]
    section = _section(extended["html"], "surrogates")
    st = p["surrogates"][0]["stability"]
    assert f">{100 * st['rule_stability']:.0f}%<br>" in section and f">{100 * st['prediction_agreement']:.1f}%<br>" in section
    rows = section.split('<table class="compare sortable">', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")[1:]
    assert len(rows) == len(p["surrogates"])
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", r, flags=re.DOTALL) for r in rows]
    # The last column: stability; no fit time (a duration belongs to the run, not the content).
    assert all(c[-1].strip() == "—" for c in cells[1:])  # stability not measured
    assert "Fit time" not in section and " ms<" not in section
    for c, e in zip(cells, p["surrogates"], strict=True):
        fo = e["fitted_on"]
        assert f"{fo['n_rows']:,}" in c[1]  # the second column: the rows it learned from


def test_additive_scorecard_renders(extended):
    html, rs = extended["card_html"], extended["card"].rules_
    fid = extended["card_fid"]
    section = _section(html, "rules")
    assert "Base points" in section and f">{int(round(rs.offset + rs.scale * rs.intercept[0]))}<" in section
    rows = section.split('<table class="additive sortable">', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")[1:]
    rule_rows = rows[1 : 1 + len(rs.rules)]
    for row, rule, w, per_rule in zip(rule_rows, rs.rules, rs.weights, fid.rules, strict=True):
        pts = int(round(rs.scale * w[0]))
        assert (f"+{pts}" if pts >= 0 else f"−{-pts}") in row
        for c in rule.conditions:
            assert str(escape(c.text())) in row
        assert f"{100 * per_rule['coverage']:.1f}%" in row and f"{100 * per_rule['precision']:.1f}%" in row
    linear = rows[-1]
    t = rs.linear[0]
    assert str(escape(f"{t.text(0, rs.scale)} (missing counts as {format_number(t.fill)})")) in linear
    decision = rs.text().splitlines()[-1][1:].strip()
    assert str(escape(decision)) in section and "points total is above 600" in decision
    # The summary shows the whole score as the model writes it.
    assert str(escape(rs.text())) in _section(html, "summary")


def test_additive_weights_render(extended):
    html, rs = extended["plain_html"], extended["plain"].rules_
    section = _section(html, "rules")
    assert "Intercept" in section and "Base points" not in section
    # Weights are printed with the fewest significant digits that keep the model's predictions.
    iv, d = rs.intercept[0], rs.digits
    assert d is not None and 1 <= d <= 6
    assert f"{'+' if iv >= 0 else '−'}{abs(iv):.{d}g}" in section
    for w in rs.weights:
        assert f"{'+' if w[0] >= 0 else '−'}{abs(w[0]):.{d}g}" in section
    t = rs.linear[0]
    assert str(escape(f"{t.text(0)} (missing counts as {format_number(t.fill)})")) in section
    assert str(escape(rs.text().splitlines()[-1][1:].strip())) in section  # the decision line


def test_new_sections_escape_hostile_names(extended):
    for html in (extended["html"], extended["card_html"]):
        assert IMG_FEATURE not in html and HOSTILE_CANDIDATE not in html and HOSTILE_ERROR not in html
        assert HOSTILE_CLASS not in html
        _only_our_script(html)
        assert not re.search(r"<[^>]*\son\w+\s*=", html, flags=re.IGNORECASE)
        for name in ("rules", "disagreement"):
            assert str(escape(IMG_FEATURE)) in _section(html, name)
    frontier_section = _section(extended["html"], "frontier")
    assert str(escape(HOSTILE_CANDIDATE)) in frontier_section and str(escape(HOSTILE_ERROR)) in frontier_section
    assert str(escape(HOSTILE_CLASS)) in _section(extended["html"], "disagreement")


def test_disagreement_section_shows_regions_and_examples(extended):
    for key in ("payload", "card_payload"):
        p = extended[key]
        section = _section(render_html(p), "disagreement")
        d = p["disagreement"]
        assert d["regions"], "the surrogate disagrees somewhere in particular"
        for g in d["regions"]:
            assert str(escape(g["text"])) in section
            assert f"{100 * g['share']:.1f}%" in section
        assert f"<strong>{d['n_disagree']:,}</strong>" in section and f"{100 * d['share']:.1f}%" in section
        for row in d["confusion"]["matrix"]:
            for v in row:
                assert f">{v:,}<" in section
        examples = section.split('<table class="examples">', 1)[1].split("<tbody>", 1)[1].split("</tbody>", 1)[0]
        assert examples.count("<tr") == len(d["examples"])
        for ex in d["examples"]:
            assert str(escape(ex["values"]["home"])) in examples
        for r in d["rules"]:
            assert str(escape(r["text"])) in section


def test_toc_matches_sections(credit, extended):
    for html in (credit["html"], extended["html"], extended["card_html"]):
        nav = html.split('<nav class="toc"', 1)[1].split("</nav>", 1)[0]
        linked = re.findall(r'href="#([\w-]+)"', nav)
        sections = re.findall(r'<section id="([\w-]+)">', html)
        assert linked == sections
    assert 'id="frontier"' not in credit["html"] and 'id="disagreement"' not in credit["html"]
    assert 'id="frontier"' not in extended["card_html"] and 'id="disagreement"' in extended["card_html"]


def test_a_payload_without_the_new_keys_still_renders(extended):
    p = copy.deepcopy(extended["payload"])
    p["schema_version"] = "1.0"
    for key in ("frontier", "disagreement"):
        del p[key]
    for e in p["surrogates"]:
        for key in ("stability", "additive", "fitted_on", "same_rules_as"):
            e.pop(key)
    html = render_html(p)
    assert 'id="frontier"' not in html and 'id="disagreement"' not in html


def test_frontier_figure_axes(monkeypatch, extended):
    pf = extended["payload"]["frontier"]
    ax = _drawn_figure(monkeypatch, lambda: figures.frontier_figure(pf, pf["selected"]))
    assert ax.get_xscale() == "log"
    assert list(ax.get_xticks()) == [2, 4, 8]
    assert isinstance(ax.yaxis.get_major_formatter(), matplotlib.ticker.PercentFormatter)
    ok = {e["candidate"] for e in pf["entries"] if e["error"] is None}
    drawn = [ln for ln in ax.get_lines() if ln.get_label() in {figures._text(c) for c in ok}]
    assert len(drawn) == len(ok) == 2  # the failing candidate is left out, the names are whole
    # The selected entry is named in the legend beside the plot, not written over the curves.
    legend = ax.get_legend()
    assert not ax.texts
    assert any(t.get_text().startswith("selected: ") for t in legend.get_texts())
    assert legend.get_bbox_to_anchor().x0 >= ax.bbox.x1
    reg = {"task": "regression", "sizes": [3], "entries": [
        {"candidate": "cost $\\frac{", "size": 3, "n_rules": 3, "score": 0.7, "pareto": True, "error": None, "fidelity": {"rows": "holdout"}},
        {"candidate": "x", "size": 3, "n_rules": None, "score": None, "pareto": False, "error": "boom", "fidelity": None},
    ]}
    ax = _drawn_figure(monkeypatch, lambda: figures.frontier_figure(reg, 0))
    assert ax.get_ylabel() == "R² on held-out rows"
    monkeypatch.undo()
    assert figures.frontier_figure(reg, 0).startswith("<svg")
    assert figures.frontier_figure({"entries": [reg["entries"][1]]}) is None


def test_recommended_can_be_named_by_the_caller(extended):
    kw = extended["kw"]
    p = build_payload(**kw, recommended=0)
    assert (p["recommended"], p["recommended_by"]) == (0, "caller")
    assert build_payload(**kw)["recommended_by"] == "rule"
    for bad in (-1, len(kw["surrogates"]), True, "0"):
        with pytest.raises(ParameterError, match="recommended"):
            build_payload(**kw, recommended=bad)
    html = render_html(build_payload(**kw, recommended=0, meta={"selection": {"max_rules": 4, "min_agreement": None}}))
    assert "the most faithful among those with at most 4 rules" in _section(html, "surrogates")


def test_every_payload_key_is_documented(extended):
    from pathlib import Path

    doc = (Path(__file__).parent.parent / "docs" / "report-json.md").read_text(encoding="utf-8")
    p = extended["payload"]
    card = extended["card_payload"]["surrogates"][0]
    groups = [
        p,
        p["surrogates"][0],
        card,
        card["additive"],
        card["additive"]["linear"][0],
        p["frontier"],
        p["frontier"]["entries"][0],
        p["disagreement"],
        p["disagreement"]["regions"][0],
        p["disagreement"]["rules"][0],
        p["disagreement"]["examples"][0],
        p["surrogates"][0]["stability"],
        # Every estimate's interval and how it was made.
        p["surrogates"][0]["fidelity"],
        p["surrogates"][0]["fidelity"]["per_class"][0],
        p["surrogates"][0]["fidelity"]["intervals"]["methods"],
        p["surrogates"][0]["rules"][0],
        p["surrogates"][0]["stability"]["rules"][0],
        p["surrogates"][0]["stability"]["conditions"][0],
        p["surrogates"][0]["stability"]["intervals"]["methods"],
        p["frontier"]["entries"][0]["fidelity"],
    ]
    missing = sorted({k for g in groups for k in g if f"`{k}`" not in doc})
    assert not missing, f"keys not in docs/report-json.md: {missing}"


def test_every_payload_validates_against_the_schema(credit, regression, extended):
    """What build_payload writes is what report.schema.json describes (build refuses anything
    else): trees, rule sets, additive models and scorecards, a frontier with a failed entry,
    stability, disagreement, both tasks; and through JSON, as a reader gets it."""
    import jsonschema

    from pellucid.reports import report_schema, validate_report

    validator = jsonschema.Draft202012Validator(report_schema())
    payloads = [credit["payload"], regression["payload"], extended["payload"], extended["card_payload"],
                extended["plain_payload"]]
    for p in payloads:
        validate_report(p, "the payload")
        validator.validate(json.loads(json.dumps(p, allow_nan=False)))


def test_extended_page_is_self_contained_and_deterministic(extended):
    html = extended["html"]
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, flags=re.IGNORECASE)
    assert "@import" not in html and "<link" not in html.lower() and html.count("<style") == 1
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert len(ids) == len(set(ids))
    for svg in _svgs(html):
        ET.fromstring(svg)
    assert render_html(extended["payload"]) == html


def test_payload_carries_every_interval(extended):
    """The intervals measured reach report.json: per surrogate, per rule (merged from its
    fidelity), per frontier entry."""
    p, fids = extended["payload"], extended["fids"]
    assert len(fids) == len(p["surrogates"])
    for s, fid in zip(p["surrogates"], fids, strict=True):
        f = s["fidelity"]
        assert f["intervals"] == fid.intervals and f["intervals"]["level"] == 0.95
        for key in ("agreement", "macro_f1", "r2"):
            assert f[key + "_ci"] == pytest.approx(list(getattr(fid, key + "_ci")))
            assert f[key + "_ci"][0] <= f[key] <= f[key + "_ci"][1]
        for c in f["per_class"]:
            assert c["agreement_ci"] is not None or c["agreement"] is None
        for rule, measured in zip(s["rules"] + [s["default"]], fid.rules + [fid.default], strict=True):
            for key in ("coverage_ci", "precision_ci", "n_decided", "decides_ci", "decided_precision_ci"):
                assert rule[key] == measured[key], key
    entries, objects = p["frontier"]["entries"], extended["front"].entries
    assert any(obj.fidelity is not None for obj in objects)
    for e, obj in zip(entries, objects, strict=True):
        if obj.fidelity is None:
            assert e["fidelity"] is None
            continue
        ef = e["fidelity"]
        for key in ("agreement", "macro_f1", "r2"):
            assert ef[key + "_ci"] == pytest.approx(list(getattr(obj.fidelity, key + "_ci")))
            assert ef[key + "_ci"][0] <= ef[key] <= ef[key + "_ci"][1]
        assert ef["intervals"]["level"] == 0.95
        assert set(ef["intervals"]["methods"]) == {"agreement", "macro_f1", "r2"}


def test_a_rows_values_read_as_the_data_has_them(monkeypatch):
    """An integer feature's value is written 61, never 61.0, in the per-row figures, whatever
    JSON made of it (the tables of row values: tests/test_document.py)."""
    instance = {"attributions": {"age": 0.3, "income": -0.2, "home": 0.1},
                "values": {"age": 61.0, "income": 60.5, "home": "rent"}, "target_label": "P(bad)"}
    ax = _drawn_figure(monkeypatch, lambda: figures.instance_figure(
        instance, kinds={"age": "integer", "income": "numeric", "home": "categorical"}))
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["age = 61", "income = 60.5", "home = rent"]


def test_a_multiclass_additive_model_puts_each_class_weight_in_one_cell():
    # One column per class beside the rule squeezed the rule to a few letters a line at 1024 px:
    # the weights of a term stand in one cell, one line per class, named by the class.
    from pellucid.oracle import Oracle
    from pellucid.surrogates import SparseLinear

    df = _img_table(n=600, seed=3)

    def three(d):
        s = np.c_[0.9 * d[IMG_FEATURE].to_numpy(), np.nan_to_num(d["z"].to_numpy()), np.where(d["home"] == "rent", 1.0, 0.0)]
        e = np.exp(s - s.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    classes = ["low", HOSTILE_CLASS, "high"]
    dset = distill(Oracle(three, task="classification", classes=classes), df, n=600, random_state=0)
    lin = SparseLinear(max_terms=3).fit(dset)
    html = render_html(build_payload(model={}, schema=dset.schema, dset=dset, surrogates=[lin],
                                     fidelities=[evaluate(lin, rows=dset)]))
    section = _section(html, "rules")
    table = section.split('<table class="additive sortable">', 1)[1].split("</table>", 1)[0]
    head = table.split("</thead>", 1)[0]
    assert "Weight per class" in head and "score of" not in head and HOSTILE_CLASS not in table
    body = table.split("<tbody>", 1)[1]
    intercept = re.findall(r"<td[^>]*>(.*?)</td>", body.split("<tr")[1], flags=re.DOTALL)[2]
    lines = intercept.split("<br>")
    assert len(lines) == 3
    for line, c, w in zip(lines, classes, lin.rules_.intercept, strict=True):
        assert str(escape(c)) in line
        shown = float(re.search(r"</span> ([+−][0-9.e-]+)</span>", line).group(1).replace("−", "-"))
        assert shown == pytest.approx(w, rel=0.01, abs=1e-3)


def test_figures_drawn_half_in_worker_processes_give_the_same_page(demo_report):
    # The run hands the report its refits' worker processes: half the figures are drawn
    # there, and the page must be the one drawn here, byte for byte.
    from pellucid.executor import LocalExecutor

    payload = json.loads((demo_report / "report.json").read_text())
    here = render_html(payload)
    assert here.count("<svg") >= 10  # enough figures that both halves draw several
    assert render_html(payload, LocalExecutor(2)) == here


def test_a_figure_that_fails_here_leaves_no_drawing_thread(demo_report, monkeypatch):
    import threading

    from pellucid.executor import LocalExecutor

    payload = json.loads((demo_report / "report.json").read_text())

    def broken(*a, **k):
        raise RuntimeError("agreement figure failed")

    monkeypatch.setattr(figures, "agreement_figure", broken)  # the first figure: drawn in this process
    with pytest.raises(RuntimeError, match="agreement figure failed"):
        render_html(payload, LocalExecutor(2))
    assert not [t for t in threading.enumerate() if t.name == "pellucid-figures"]


@pytest.mark.parametrize("regression", [False, True])
def test_agreement_axis_labels_never_print_over_one_another(regression):
    """Long surrogate names leave the axis about 3.7 inches: matplotlib's own tick count put
    eight labels ("92.0%" ... "99.0%") on it, run into one another on the demo's page. The
    figure's SVG holds at most six tick labels."""
    names = ["faithful_tree_4", "faithful_tree_4_observed", "exhaustive_rule_list_4_observed",
             "faithful_tree_16_observed", "scorecard_12_observed"]
    values = [0.945, 0.945, 0.981, 0.983, 0.928]
    task = "regression" if regression else "classification"
    surrogates = [{"name": n, "complexity": {"n_rules": 3 + i},
                   "fidelity": {"task": task, "rows": "holdout", "agreement": v, "r2": v,
                                "agreement_ci": [v - 0.013, v + 0.006]}}
                  for i, (n, v) in enumerate(zip(names, values, strict=True))]
    svg = figures.agreement_figure(surrogates, 2)
    assert 3 <= len(set(re.findall(r"xtick_\d+", svg))) <= 6


@pytest.mark.parametrize("n_uncovered", [None, 0, 1])
def test_rows_no_rule_covers_are_counted_in_a_sentence_that_agrees_with_the_count(credit, n_uncovered):
    from pellucid.surrogates.rule_ensembles import BoostedRules

    dset = credit["dset"]
    model = BoostedRules(n_estimators=6, random_state=0).fit(dset)
    payload = build_payload(model=_model_dict("classification"), schema=credit["schema"], dset=dset, surrogates=[model],
                            fidelities=[evaluate(model, rows=dset)])
    default = payload["surrogates"][0]["default"]
    if n_uncovered is not None:  # as a table where every row, or a single row, has a rule would give
        n = payload["surrogates"][0]["fidelity"]["n"]
        default["n_covered"], default["coverage"] = n_uncovered, n_uncovered / n
    count = default["n_covered"]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", render_html(payload)))
    if count == 0:
        assert re.search(r"Every one of the [\d,]+ held-out rows has a rule that applies\.", text)
        assert "no rule that applies" not in text
    else:
        said = re.search(r"([\d,]+) of [\d,]+ held-out rows \([\d.]+%\) (has|have) no rule that applies: "
                         r"the intercept alone (decides|decide) (it|them)\.", text)
        assert said is not None
        one = count == 1
        assert int(said.group(1).replace(",", "")) == count
        assert said.groups()[1:] == (("has", "decides", "it") if one else ("have", "decides", "them"))


def test_the_page_from_compiled_templates_on_disk_is_the_page(credit, tmp_path, monkeypatch):
    """Templates compile once into Jinja2's cache on disk; a later process reads them back
    instead of compiling, and renders the same page byte for byte. A template whose source
    changed is compiled afresh (the cache is keyed by the source's checksum)."""
    import jinja2

    from pellucid.reports import _templates

    compiled = []
    compile_ = jinja2.Environment.compile
    monkeypatch.setattr(jinja2.Environment, "compile",
                        lambda self, source, *a, **k: compiled.append(a[0] if a else k.get("name")) or
                        compile_(self, source, *a, **k))
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setattr(_templates, "_bytecode_cache", lambda: _templates._CompiledTemplates(str(cache)))
    templates = tmp_path / "templates"
    shutil.copytree(_templates.TEMPLATES, templates)
    monkeypatch.setattr(_templates, "TEMPLATES", templates)

    def page():  # a process of its own: a new environment
        _templates.environment.cache_clear()
        try:
            return render_html(credit["payload"])
        finally:
            _templates.environment.cache_clear()

    pages = [page(), page()]
    first = ["report.css", "report.html.j2", "report.js"]  # the page and what it includes
    assert sorted(compiled) == first
    assert len(list(cache.iterdir())) == len(first)
    assert pages[0] == pages[1] == credit["html"]
    (templates / "report.html.j2").write_text((templates / "report.html.j2").read_text() + "\n<!-- changed -->\n")
    assert "<!-- changed -->" in page()
    assert sorted(compiled) == sorted(first + ["report.html.j2"])
    # A cache that cannot be read or written (its folder gone) costs a compile, not the page.
    shutil.rmtree(cache)
    assert page() == page()
    assert sorted(compiled) == sorted(first + ["report.html.j2"] + first * 2)
