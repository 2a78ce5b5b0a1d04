"""The report's concepts, sensitivity and class-response section: what explain puts in the
payload is what the analysis functions return on their own, the page shows it escaped, and
bad requests are refused with a message that names what is wrong."""

from __future__ import annotations

import json

import numpy as np
import pytest
from markupsafe import escape

from pellucid import Oracle
from pellucid.attribution import sobol, tcav_many
from pellucid.cli import main
from pellucid.demo import CLASSES, TARGET, make_credit, train_credit_network
from pellucid.errors import ParameterError
from pellucid.oracle import DETERMINISM_ROWS
from pellucid.pipeline import explain

HOSTILE = "<img src=x onerror=alert(1)>"
FAST = dict(sizes=(4,), surrogates=["decision_tree"], n_boot=0, attributions=["integrated_gradients"],
            attribution_rows=40, local=False, linear_view=False, verbose=0)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    df = make_credit(1200, random_state=5)
    X, y = df.drop(columns=TARGET), df[TARGET]
    net, pre = train_credit_network(X, y, epochs=6, random_state=0)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES), verbose=0)
    out = tmp_path_factory.mktemp("analysis")
    concepts = {"high leverage": "debt_ratio > 0.6", HOSTILE: "age > 60"}
    res = explain(oracle, df, target=TARGET, out_dir=out, n=1200, sensitivity=256, concepts=concepts,
                  concept_layer="1", visualise=True, **FAST)
    return res, oracle, X, concepts, out


def test_sensitivity_is_sobol_over_the_schema(run):
    res, oracle, _, _, out = run
    a = json.loads((out / "report.json").read_text())["analysis"]
    assert a["output"] == "bad"
    again = sobol(oracle, res.schema, n=256, output="bad", random_state=0)
    assert a["sensitivity"]["sobol"]["total"] == pytest.approx(again.to_dict()["total"])
    order = a["sensitivity"]["order"]
    totals = [a["sensitivity"]["sobol"]["total"][f] for f in order]
    assert totals == sorted(totals, reverse=True) and set(order) == set(res.schema.names)
    names = [c["importance"] for c in a["sensitivity"]["comparison"]]
    assert names == ["Morris mu*", "Integrated Gradients"]


def test_concepts_are_tcav_on_the_observed_training_rows(run):
    res, oracle, _, concepts, out = run
    a = json.loads((out / "report.json").read_text())["analysis"]["concepts"]
    d = res.distillation
    observed = d.rows[(d.source == "observed") & ~d.is_holdout].reset_index(drop=True)
    target = observed[np.asarray(oracle.predict(observed), dtype=object) == "bad"]
    direct = tcav_many(oracle, "1", concepts, observed, target, "bad", repeats=20, random_state=0)
    assert a["n_target"] == len(target) and a["layer"] == "1"
    for got, want in zip(a["results"], direct.values(), strict=True):
        assert got["concept"] == want.concept
        assert got["p_value"] == pytest.approx(want.p_value) and got["significant"] == want.significant
        np.testing.assert_allclose(got["derivatives"], want.derivatives)


def test_class_rows_are_scored_by_the_network(run):
    res, oracle, X, _, out = run
    classes = json.loads((out / "report.json").read_text())["analysis"]["classes"]
    assert [c["class"] for c in classes] == list(CLASSES)
    for k, c in enumerate(classes):
        top = X.loc[[int(i) for i in c["top"]["labels"]]]
        np.testing.assert_allclose(c["top"]["scores"], oracle.predict_proba(top)[:, k], rtol=1e-6)  # float32 batches
        assert c["maximised"]["probability"] >= max(c["top"]["scores"]) - 1e-9  # searched from those rows


def test_the_page_shows_the_section_escaped(run):
    _, _, _, _, out = run
    html = (out / "report.html").read_text()
    assert 'id="analysis"' in html and 'href="#analysis"' in html and 'id="fig-sobol' in html
    assert HOSTILE not in html and str(escape(HOSTILE)) in html


def test_bad_requests_name_what_is_wrong(run):
    res, oracle, X, _, _ = run
    with pytest.raises(ParameterError, match=r"concepts need concept_layer.*layers: \['0', '1'"):
        explain(oracle, X, out_dir=None, concepts={"c": "age > 60"}, **FAST)
    # Refused before distilling: the network answered the determinism check's rows (twice) and no more.
    oracle.reset_counter()
    with pytest.raises(ParameterError, match=r"no layer named 'nope'.*'1 \(ReLU\)'"):
        explain(oracle, X, out_dir=None, n=500, concepts={"c": "age > 60"}, concept_layer="nope", **FAST)
    assert oracle.n_queries == 2 * min(len(X), DETERMINISM_ROWS)
    with pytest.raises(ParameterError, match="concept_target 'maybe' is not a class"):
        explain(oracle, X, out_dir=None, sensitivity=64, concept_target="maybe", **FAST)
    forest = Oracle(lambda Z: np.tile([0.3, 0.7], (len(Z), 1)), preprocess=oracle.preprocess, task="classification",
                    classes=list(CLASSES))
    with pytest.raises(ParameterError, match="need a torch network's layers; this model is callable"):
        explain(forest, X, out_dir=None, concepts={"c": "age > 60"}, concept_layer="1",
                **{**FAST, "attributions": False})


def test_cli_takes_the_analysis_options(tmp_path, capsys):
    code = main(["demo", "--rows", "1200", "--out", str(tmp_path), "--sizes", "4", "--n-boot", "0",
                 "--attributions", "none", "--no-local", "--no-scorecard", "--quiet", "--surrogates", "decision_tree",
                 "--sensitivity", "128", "--concept", "high leverage=debt_ratio > 0.6", "--concept-layer", "1"])
    assert code == 0, capsys.readouterr().err
    a = json.loads((tmp_path / "report.json").read_text())["analysis"]
    assert a["sensitivity"]["sobol"]["n"] == 128 and a["concepts"]["results"][0]["concept"] == "high leverage"
    assert a["classes"] is None
    with pytest.raises(SystemExit):
        main(["demo", "--concept", "no rule"])
    assert "--concept takes NAME=RULE" in capsys.readouterr().err
