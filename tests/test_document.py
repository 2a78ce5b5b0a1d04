"""The filed document says exactly what was done: one identity per row, what each surrogate
learned from, how the recommendation was chosen, and the model card at the head.

One small explain run, on a table whose rows are named by an id column in another order than
their positions, feeds the checks; the selection rules are also driven directly.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle
from pellucid.demo import TARGET, make_credit, train_credit_network
from pellucid.errors import SchemaError
from pellucid.fidelity.frontier import Frontier, FrontierEntry
from pellucid.pipeline import explain
from pellucid.pipeline.stages import distinct as _distinct

CARD = {"model_name": "Retail default score", "version": "4.1", "owner": "Risk Analytics", "date": "2026-11-30",
        "approval": "Model Risk Committee, approved"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    df = make_credit(1400, random_state=11)
    X, y = df.drop(columns=TARGET), df[TARGET]
    net, pre = train_credit_network(X, y, epochs=5, random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=["good", "bad"], verbose=0)
    # Ids that are not the positions, and a shuffled order: a row named by its position
    # somewhere would name another applicant.
    rng = np.random.default_rng(0)
    data = df.assign(application=[f"A{n:05d}" for n in rng.permutation(90_000)[: len(df)]])
    data = data.iloc[rng.permutation(len(data))].reset_index(drop=True)
    out = tmp_path_factory.mktemp("document")
    res = explain(oracle, data, target=TARGET, id_column="application", out_dir=out, n=1500, sizes=(4, 8),
                  surrogates=["decision_tree", "skope_rules"], n_boot=3, attributions=["saliency"], attribution_rows=60,
                  local_rows=[data["application"].iloc[5]], card=CARD, verbose=0)
    payload = json.loads((out / "report.json").read_text())
    html = (out / "report.html").read_text()
    return data.set_index("application"), res, payload, html


def _named_rows(payload):
    """Every place the report names a row of the data, with the values it shows."""
    out = []
    for inst in payload["attributions"]["instances"]:
        out.append(("attributions", inst["row"], inst["values"]))
    for r in payload["local"]["rows"]:
        out.append(("local", r["row"], r["values"]))
    for ex in payload["disagreement"]["examples"]:
        out.append(("disagreement", ex["row"], ex["values"]))
    return out


def test_every_named_row_is_the_row_with_that_id(run):
    data, _, payload, _ = run
    named = _named_rows(payload)
    assert {where for where, _, _ in named} >= {"attributions", "local"}
    for where, row, values in named:
        assert isinstance(row, str), f"{where} names a row by {row!r}, not by its id as text"
        assert row in data.index, f"{where} names {row!r}, which is no id of the data"
        for f in ("income", "age", "debt_ratio"):
            v, truth = values[f], data.loc[row, f]
            if pd.isna(truth):
                assert v in (None, "missing"), (where, row, f, v)
            else:
                assert float(v) == pytest.approx(float(truth), rel=1e-3), (where, row, f, v, truth)
    assert payload["meta"]["id_column"] == "application"
    assert "application" not in [f["name"] for f in payload["data"]["schema"]["features"]]


def test_ids_must_name_each_row_once():
    df = make_credit(200, random_state=1)
    df["application"] = "same"
    with pytest.raises(SchemaError, match=r"id column 'application'.*'same' names 200 rows"):
        explain(lambda d: np.tile([0.3, 0.7], (len(d), 1)), df, id_column="application", out_dir=None, verbose=0)
    dup = make_credit(200, random_state=1).set_axis([0] * 100 + list(range(1, 101)))
    with pytest.raises(SchemaError, match=r"row labels.*'0' names 100 rows.*id_column"):
        explain(lambda d: np.tile([0.3, 0.7], (len(d), 1)), dup, out_dir=None, verbose=0)


def test_each_surrogate_says_what_it_learned_from(run):
    _, res, payload, html = run
    dset = res.distillation
    for entry, s in zip(payload["surrogates"], res.surrogates, strict=True):
        fo = entry["fitted_on"]
        # Counted independently: the training view of the frontier entry that fitted it.
        e = next(e for e in res.frontier.entries if e.surrogate is s)
        train = e.data.train
        assert fo["n_rows"] == len(train)
        assert fo["synthetic"] == int((train.source != "observed").sum())
        assert fo["by_source"] == {str(k): int(v) for k, v in pd.Series(train.source).value_counts().items()}
    best = payload["surrogates"][payload["recommended"]]
    summary = html.split('<section id="summary">', 1)[1].split("</section>", 1)[0]
    words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", summary))
    n = f"{best['fitted_on']['n_rows']:,}"
    if best["fitted_on"]["synthetic"]:
        assert f"the recommended one on {n} rows:" in words
    else:
        assert f"the recommended one on {n} observed rows (no synthetic rows)" in words
    # No sentence claims the whole distillation set for every surrogate.
    assert f"on {dset.summary()['n_train']:,} observed and synthetic rows" not in words


def test_the_recommendation_states_its_rule_and_lists_each_set_of_rules_once(run):
    _, res, payload, html = run
    sel = payload["meta"]["selection"]
    assert "at most 12 rules or terms" in sel["rule"] and "stability" in sel["rule"]
    section = re.sub(r"\s+", " ", html.split('<section id="surrogates">', 1)[1].split("</section>", 1)[0])
    assert sel["rule"] in section
    texts = [json.dumps(s.rules_.to_dict(), sort_keys=True) for s in res.surrogates]
    assert len(set(texts)) == len(texts), "two listed surrogates have the same rules"
    # The linear view is on the frontier, and so eligible.
    lv = payload["surrogates"][payload["linear_view"]]
    assert any(e["surrogate_index"] == payload["linear_view"] for e in payload["frontier"]["entries"])
    assert lv["complexity"]["n_rules"] <= 12


def test_the_card_heads_the_page(run):
    _, _, payload, html = run
    head = html.split('<nav class="toc"', 1)[0]
    title = re.search(r"<title>(.*?)</title>", head).group(1)
    assert "Retail default score" in title and "4.1" in title
    h1 = re.search(r"<h1>(.*?)</h1>", head).group(1)
    assert "Retail default score" in h1
    for v in CARD.values():
        assert v in head, f"{v!r} is not on the first screen"
    best = payload["surrogates"][payload["recommended"]]
    assert best["label"] in head and "agrees with the network on" in head


def _entry(name, score, n_rules, n_conditions):
    return FrontierEntry(candidate=name, size=n_rules, score=score, n_rules=n_rules, n_conditions=n_conditions)


def test_exact_ties_go_to_stability_then_simplicity():
    a, b, c = _entry("a", 0.9, 4, 8), _entry("b", 0.9, 3, 6), _entry("c", 0.85, 2, 2)
    front = Frontier([a, b, c], "classification")
    assert front.select(max_rules=12) is b  # no tie-break: the simpler of the tie
    assert front.select(max_rules=12, tie_break=lambda e: {"a": 0.9, "b": 0.5}[e.candidate]) is a  # more stable
    assert front.ties(max_rules=12) == [a, b]
    asked = []

    def stability(e):
        asked.append(e.candidate)
        return 0.7

    assert front.select(max_rules=12, tie_break=stability) is b  # equal stability: simpler
    assert sorted(asked) == ["a", "b"]  # asked only of the tied entries


def test_identical_rules_are_listed_once():
    class S:
        def __init__(self, text):
            self.rules_ = type("R", (), {"to_dict": lambda self_: {"text": text}})()

    e4, e8, e16, other = (FrontierEntry("skope", k) for k in (4, 8, 16, 32))
    e4.surrogate, e8.surrogate, e16.surrogate, other.surrogate = S("x"), S("x"), S("x"), S("y")
    kept, same = _distinct([e4, e8, e16, other], keep=e8)
    assert kept == [e8, other]  # the chosen one stands for its twins
    assert same[id(e8)] == [e4, e16]


def test_integer_values_are_written_as_integers(run):
    _, _, payload, html = run
    integer = [f["name"] for f in payload["data"]["schema"]["features"] if f["kind"] == "integer"]
    cells = re.findall(r'<span class="k">(.*?)</span> ([^<]+)</span>', html)
    shown = [(k.replace("<wbr>", ""), v.strip()) for k, v in cells if k.replace("<wbr>", "") in integer]
    assert integer and shown, "the page shows no row values of an integer feature"
    for name, v in shown:
        assert re.fullmatch(r"-?\d+", v), f"{name} is written {v!r}"


def test_the_page_speaks_of_no_domain_the_card_did_not_name():
    """A breast-cancer report called its scorecard "the form credit teams file": the page's
    own words are domain-free; domain words come from the card alone."""
    from pathlib import Path

    import pellucid.reports

    folder = Path(pellucid.reports.__file__).parent / "templates"
    text = "\n".join(p.read_text() for p in folder.glob("*.j2")).lower()
    text = re.sub(r"\{#.*?#\}", "", text, flags=re.S)  # template comments say what they like
    for word in ("credit", "lender", "applicant", "underwrit", "loan", "borrower"):
        assert word not in text, word
