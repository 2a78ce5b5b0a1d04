"""Tests of the governance parts of the report: the model card, the limitations the run finds
in its own explanations, the distance of synthetic rows from the data, the scorecard view,
the weights' digest, and ``pellucid report`` (the page again from report.json).

A real run on the credit example feeds the end-to-end checks; the limitation checks are also
driven one by one from payloads changed in known ways, so each threshold is seen to fire and
not to fire.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch
from markupsafe import escape
from scipy.spatial.distance import cdist

from pellucid import Oracle
from pellucid.cli import main
from pellucid.demo import TARGET, make_credit, train_credit_network
from pellucid.errors import DataFileError, ParameterError
from pellucid.extraction import distill
from pellucid.fidelity.extrapolation import _Encoder, extrapolation
from pellucid.pipeline import explain
from pellucid.reports import limitations as lim
from pellucid.reports import load_card, render_html
from pellucid.reports.card import FIELDS, validate_card
from pellucid.schema import Schema

HOSTILE = "<img src=x onerror=alert(1)>"


# ---------------------------------------------------------------------------- the run
@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One real run on the credit network with a card, written to disk."""
    df = make_credit(1500, random_state=3)
    X, y = df.drop(columns=TARGET), df[TARGET]
    net, pre = train_credit_network(X, y, epochs=6, random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=["good", "bad"], verbose=0)
    card = {"purpose": f"Rank applications {HOSTILE}", "out_of_scope": ["business loans"],
            "performance": {"AUC": 0.8}, "extra": {"Policy": "MRM-7"}}
    out = tmp_path_factory.mktemp("governance")
    res = explain(oracle, df, target=TARGET, out_dir=out, n=1500, sizes=(4, 8), surrogates=["decision_tree"],
                  n_boot=3, attributions=["saliency", "integrated_gradients"], attribution_rows=80,
                  local=True, card=card, verbose=0)
    return res, net, out


def test_card_and_limitations_are_in_both_twins(run):
    res, _, out = run
    p = json.loads((out / "report.json").read_text())
    assert p["card"]["fields"]["purpose"] == f"Rank applications {HOSTILE}"
    assert p["limitations"] == lim.find_limitations(p)
    html = (out / "report.html").read_text()
    for key, label, _ in FIELDS:
        assert f'<th scope="row">{label}</th>' in html
    # Data strings from the card are text on the page.
    assert HOSTILE not in html and str(escape(HOSTILE)) in html
    # Fields left out are marked, one per missing field.
    assert html.count('class="missing"') == len(FIELDS) - 3
    for f in p["limitations"]:
        assert str(escape(f["title"])) in html


def test_scorecard_view_is_listed_and_measured(run):
    res, _, out = run
    p = res.payload
    lv = p["linear_view"]
    s = p["surrogates"][lv]
    assert s["type"] == "Scorecard" and s["additive"]["scorecard"]
    assert s["complexity"]["n_rules"] <= 12
    # Its fidelity is the agreement of its own predictions with the network on the holdout.
    fitted = res.surrogates[lv]
    hold = res.distillation.holdout
    agree = np.mean(np.asarray(fitted.predict(hold.rows)) == np.asarray(hold.labels))
    assert s["fidelity"]["agreement"] == pytest.approx(agree)
    assert 'id="linear"' in (out / "report.html").read_text()


def test_extrapolation_in_payload_matches_recomputation(run):
    res, _, _ = run
    ex = res.payload["distillation"]["extrapolation"]
    again = extrapolation(res.distillation, random_state=0)
    assert ex == json.loads(json.dumps(again))
    assert set(ex["strategies"]) == {"perturb", "marginal"}


def test_distillation_section_shows_distance_from_the_data(run):
    res, _, out = run
    html = (out / "report.html").read_text()
    section = html.split('<section id="distillation">', 1)[1].split("</section>", 1)[0]
    table = section.split("How far the synthetic rows lie from the data", 1)[1]
    for name, v in res.payload["distillation"]["extrapolation"]["strategies"].items():
        row = table.split(f"<td>{name}</td>", 1)[1].split("</tr>", 1)[0]
        assert f"{100 * v['outside']:.1f}%" in row and f"{v['median_ratio']:.2f}" in row


def test_weights_digest_follows_the_weights(run):
    res, net, _ = run
    digest = res.payload["model"]["weights_sha256"]
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    twin = copy.deepcopy(net)
    assert Oracle(twin, task="classification").describe()["weights_sha256"] == digest
    with torch.no_grad():
        next(twin.parameters()).view(-1)[0] += 1e-3
    assert Oracle(twin, task="classification").describe()["weights_sha256"] != digest


def test_report_command_adds_a_card_and_keeps_the_twins(run, tmp_path, capsys):
    _, _, out = run
    card = tmp_path / "card.yaml"
    card.write_text(f"owner: Credit Risk\npurpose: |\n  Two lines\n  {HOSTILE}\n", encoding="utf-8")
    assert main(["report", str(out / "report.json"), "--card", str(card), "--out", str(tmp_path / "again")]) == 0
    p = json.loads((tmp_path / "again" / "report.json").read_text())
    assert p["card"]["fields"] == {"owner": "Credit Risk", "purpose": f"Two lines\n{HOSTILE}"}
    assert p["card"]["sha256"] == hashlib.sha256(card.read_bytes()).hexdigest()
    html = (tmp_path / "again" / "report.html").read_text()
    assert html == render_html(p)
    # Everything else is the run's: the same surrogates and limitations.
    orig = json.loads((out / "report.json").read_text())
    assert p["surrogates"] == orig["surrogates"] and p["limitations"] == orig["limitations"]


def test_report_command_errors_name_the_file(tmp_path, capsys):
    bad = tmp_path / "report.json"
    bad.write_text("{not json", encoding="utf-8")
    assert main(["report", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and err.count("\n") == 1
    assert main(["report", str(tmp_path / "missing.json")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_pdf_without_chromium_is_a_clear_error(run, tmp_path, capsys):
    _, _, out = run
    missing = tmp_path / "no-chromium"
    code = main(["report", str(out / "report.json"), "--out", str(tmp_path), "--pdf", "--chromium", str(missing)])
    assert code == 2
    err = capsys.readouterr().err
    assert "chromium" in err.lower() and str(missing) in err


# ---------------------------------------------------------------------------- card files
@pytest.mark.parametrize("suffix, text", [
    (".toml", 'purpose = "Scores"\nout_of_scope = ["a", "b"]\ndate = 2026-01-02\n[performance]\nAUC = 0.8\n[extra]\nRef = "X"\n'),
    (".yaml", "purpose: Scores\nout_of_scope: [a, b]\ndate: 2026-01-02\nperformance: {AUC: 0.8}\nextra: {Ref: X}\n"),
    (".json", '{"purpose": "Scores", "out_of_scope": ["a", "b"], "date": "2026-01-02", "performance": {"AUC": 0.8}, "extra": {"Ref": "X"}}'),
])
def test_card_formats_read_the_same(tmp_path, suffix, text):
    f = tmp_path / f"card{suffix}"
    f.write_text(text, encoding="utf-8")
    card = load_card(f)
    assert card["fields"] == {"purpose": "Scores", "out_of_scope": ["a", "b"], "date": "2026-01-02",
                              "performance": {"AUC": 0.8}}
    assert card["extra"] == {"Ref": "X"} and card["source"] == f.name


def test_shipped_example_card_reads():
    from pathlib import Path

    card = load_card(Path(__file__).parent.parent / "docs" / "card-example.toml")
    assert {"purpose", "intended_use", "data_lineage", "performance", "limitations", "explanation_method"} <= set(card["fields"])


@pytest.mark.parametrize("name, text, words", [
    ("card.toml", 'purpose = "x"\npurpse = "typo"\n', ["purpse", "unknown field"]),
    ("card.toml", "purpose = [1, true]\n", ["purpose", "text"]),
    ("card.toml", "purpose = \n", ["not valid TOML"]),
    ("card.yaml", "purpose: [unclosed\n", ["not valid YAML"]),
    ("card.yaml", "- a\n- b\n", ["top level"]),
    ("card.yaml", "performance: {AUC: [1, 2]}\n", ["performance", "AUC"]),
    ("card.txt", "purpose = 'x'\n", ["unknown format"]),
    # TOML and YAML have nan and inf, JSON (as Python reads it) NaN: no value to file, and no JSON.
    ("card.toml", "[performance]\nauc = nan\n", ["performance", "auc", "finite"]),
    ("card.yaml", "performance: {gini: .inf}\n", ["performance", "gini", "finite"]),
    ("card.json", '{"performance": {"auc": NaN}}', ["performance", "auc", "finite"]),
    ("card.toml", "version = inf\n", ["version", "finite"]),
    ("card.toml", "limitations = [1.5, -inf]\n", ["limitations", "finite"]),
])
def test_bad_cards_name_file_and_key(tmp_path, name, text, words):
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    with pytest.raises(DataFileError) as e:
        load_card(f)
    assert str(f) in str(e.value)
    for w in words:
        assert w in str(e.value)


def test_missing_card_file(tmp_path):
    with pytest.raises(DataFileError, match="does not exist"):
        load_card(tmp_path / "nope.toml")
    with pytest.raises(DataFileError, match="unknown field"):
        validate_card({"owner": "a", "colour": "b"})


# ---------------------------------------------------------------------------- limitations
@pytest.fixture(scope="module")
def payload(run):
    return json.loads(json.dumps(run[0].payload))


def _kinds(p):
    return [f["kind"] for f in lim.find_limitations(p)]


def test_region_finding_follows_its_threshold(payload):
    p = copy.deepcopy(payload)
    dis = p["disagreement"]
    dis["share"] = 0.05
    dis["regions"] = [{"text": "a", "n_rows": 10, "share": 0.099, "share_of_disagreements": 0.2},
                      {"text": "b", "n_rows": 20, "share": 0.10, "share_of_disagreements": 0.4}]
    found = [f for f in lim.find_limitations(p) if f["kind"] == "low_fidelity_region"]
    assert [i["region"] for i in found[0]["items"]] == ["b"]
    dis["regions"][1]["share"] = 0.09
    assert "low_fidelity_region" not in _kinds(p)


def test_unstable_and_synthetic_rules(payload):
    p = copy.deepcopy(payload)
    best = p["surrogates"][p["recommended"]]
    best["stability"] = {"n_boot": 10, "rules": [{"text": "r1", "share": 0.4}, {"text": "r2", "share": 0.5}]}
    best["fidelity"]["rows"] = "holdout"
    for r in best["rules"]:
        r["support"], r["coverage"] = 0.1, 0.1
    best["rules"][0]["support"], best["rules"][0]["coverage"] = 0.2, 0.049
    found = {f["kind"]: f for f in lim.find_limitations(p)}
    assert [i["rule"] for i in found["unstable_rules"]["items"]] == ["r1"]
    assert [i["rule"] for i in found["synthetic_rules"]["items"]] == ["R1"]
    best["rules"][0]["coverage"] = 0.05  # exactly a quarter of the support: not flagged
    assert "synthetic_rules" not in _kinds(p)


def test_method_disagreement_uses_ranks(payload):
    p = copy.deepcopy(payload)
    feats = [f["name"] for f in p["data"]["schema"]["features"]]
    imp_a = {f: float(len(feats) - i) for i, f in enumerate(feats)}      # feats[0] first
    imp_b = {f: float(i) for i, f in enumerate(feats)}                    # feats[0] last
    p["attributions"]["methods"] = [{"name": "a", "importance": imp_a, "evaluation": {}},
                                    {"name": "b", "importance": imp_b, "evaluation": {}}]
    found = {f["kind"]: f for f in lim.find_limitations(p)}["method_disagreement"]
    flagged = {i["feature"] for i in found["items"]}
    # Top 3 of one and in the lower half of the other: the first three and the last three.
    assert flagged == set(feats[:3]) | set(feats[-3:])
    p["attributions"]["methods"][1]["importance"] = imp_a
    assert "method_disagreement" not in _kinds(p)


def test_attribution_checks_local_fit_and_interval(payload):
    p = copy.deepcopy(payload)
    p["attributions"]["methods"] = [
        {"name": "a", "importance": {}, "evaluation": {"sanity": {"passed": False}}},
        {"name": "b", "importance": {}, "evaluation": {"deletion_auc": 0.5, "random_deletion_auc": 0.4}},
        {"name": "c", "importance": {}, "evaluation": {"sanity": {"passed": True}, "deletion_auc": 0.3, "random_deletion_auc": 0.4}},
    ]
    p["local"] = {"rows": [{"row": "1", "lime": {"local_r2": 0.49}}, {"row": "2", "lime": {"local_r2": 0.5}},
                           {"row": "3", "lime": {"local_r2": 0.9}, "anchor": {"success": False}}]}
    best = p["surrogates"][p["recommended"]]
    best["fidelity"]["agreement_ci"] = [0.90, 0.961]
    found = {f["kind"]: f for f in lim.find_limitations(p)}
    assert [i["method"] for i in found["attribution_checks"]["items"]] == ["a", "b"]
    assert [i["row"] for i in found["local_fit"]["items"]] == ["1", "3"]
    assert "wide_interval" in found
    best["fidelity"]["agreement_ci"] = [0.90, 0.96]
    assert "wide_interval" not in _kinds(p)


def test_page_lists_checks_when_nothing_is_found(payload):
    p = copy.deepcopy(payload)
    p["limitations"] = []
    html = render_html(p)
    assert "None of these checks flagged anything" in html
    for c in lim.CHECKS:
        assert str(escape(c)) in html


# ---------------------------------------------------------------------------- extrapolation
def _correlated(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 1, n)
    return pd.DataFrame({"a": a, "b": a + rng.normal(0, 0.05, n),
                         "c": rng.choice(["x", "y"], n).astype(object)})


class _Sum:
    task, classes_, n_queries = "regression", None, 0

    def query(self, rows):
        return rows["a"].to_numpy() + rows["b"].to_numpy()


def test_marginal_rows_lie_outside_only_when_features_are_correlated():
    X = _correlated(1500, 0)
    d = distill(_Sum(), X, strategy={"observed": 1500, "marginal": 1500}, random_state=0)
    # Marginal sampling breaks a ≈ b: most rows are far from every observed row.
    assert extrapolation(d, random_state=0)["strategies"]["marginal"]["outside"] > 0.5
    # With independent features the same sampler stays inside the data.
    X["b"] = np.random.default_rng(1).normal(0, 1, len(X))
    d = distill(_Sum(), X, strategy={"observed": 1500, "marginal": 1500}, random_state=0)
    assert extrapolation(d, random_state=0)["strategies"]["marginal"]["outside"] < 0.05


def test_extrapolation_matches_brute_force():
    X = _correlated(300, 1)
    X.loc[X.index[:20], "a"] = np.nan
    d = distill(_Sum(), X.fillna({"a": 0.0}), strategy={"observed": 300, "marginal": 200}, random_state=1)
    ex = extrapolation(d, quantile=0.9, max_rows=1000, random_state=0)
    train = ~d.is_holdout
    obs = d.rows[train & (d.source == "observed")]
    syn = d.rows[train & (d.source == "marginal")]
    enc = _Encoder(d.schema, obs)
    D = cdist(enc(obs), enc(obs))
    np.fill_diagonal(D, np.inf)
    thr = np.quantile(D.min(axis=1), 0.9)
    outside = np.mean(cdist(enc(syn), enc(obs)).min(axis=1) > thr)
    assert ex["threshold"] == pytest.approx(thr)
    assert ex["strategies"]["marginal"]["outside"] == pytest.approx(outside)


def test_encoder_distances_are_in_spread_units():
    X = pd.DataFrame({"n": [0.0, 1.0, 2.0, 3.0, np.nan], "k": ["u", "v", "u", "v", None]})
    schema = Schema.from_frame(X)
    enc = _Encoder(schema, schema.validate(X))
    Z = enc(schema.validate(X))
    s = enc.scale["n"]
    assert np.linalg.norm(Z[0] - Z[2]) == pytest.approx(2 / s)          # same category
    assert np.linalg.norm(Z[0] - Z[1]) == pytest.approx(np.hypot(1 / s, 1.0))  # one unit for the category


def test_extrapolation_parameters():
    X = _correlated(100, 2)
    d = distill(_Sum(), X, strategy={"observed": 100}, random_state=0)
    assert extrapolation(d)["strategies"] == {}
    with pytest.raises(ParameterError, match="quantile"):
        extrapolation(d, quantile=1.0)
    with pytest.raises(ParameterError, match="max_rows"):
        extrapolation(d, max_rows=3)


def test_close_choice_follows_the_validation_interval(payload):
    from pellucid.fidelity.intervals import wilson

    p = copy.deepcopy(payload)
    front = p["frontier"]
    front["task"], front["validation_rows"], p["recommended_max_rules"] = "classification", 400, 12
    entries = front["entries"]
    sel = front["selected"]
    for i, e in enumerate(entries):
        e["validation_score"], e["n_rules"], e["n_conditions"] = 0.5, 3, i  # far below: none close
    entries[sel]["validation_score"] = 0.9
    assert "close_choice" not in _kinds(p)
    low = wilson(0.9 * 400, 400)[0]
    others = [i for i in range(len(entries)) if i != sel][:4]
    for i in others[:3]:
        entries[i]["validation_score"] = low  # at the interval's lower end: close
    entries[others[3]]["validation_score"] = low - 1e-6  # just outside
    found = {f["kind"]: f for f in lim.find_limitations(p)}["close_choice"]
    assert len(found["items"]) == 3 and "400 validation rows" in found["title"]
    twin = copy.deepcopy(entries[others[0]])
    twin["size"] = 99  # the same fit at a larger budget: one rival, not two
    entries.append(twin)
    assert len({f["kind"]: f for f in lim.find_limitations(p)}["close_choice"]["items"]) == 3
    entries.pop()
    entries[others[0]]["n_rules"] = 13  # beyond the rule budget: not a rival
    assert "close_choice" not in _kinds(p)
    front["validation_rows"] = None  # chosen on the held-out rows: nothing to say here
    assert "close_choice" not in _kinds(p)
