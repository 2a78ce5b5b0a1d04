"""Attributions in the report: what summarise gathers, and how the page shows it."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle, distill
from pellucid.attribution import (
    global_importance,
    integrated_gradients,
    occlusion,
    rank_agreement,
    surrogate_importance,
)
from pellucid.attribution.summary import _sanity, summarise
from pellucid.demo import CLASSES
from pellucid.errors import ParameterError
from pellucid.reports import build_payload
from pellucid.reports.builder import render_html
from pellucid.surrogates import DecisionTree

pytestmark = pytest.mark.usefixtures("one_torch_thread")

HOSTILE = "<script>alert('col')</script>"


@pytest.fixture(scope="module")
def gathered(credit, credit_net):
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES), verbose=0)
    dset = distill(oracle, X.iloc[:800], n=2000, random_state=0)
    tree = DecisionTree(max_leaf_nodes=6, random_state=0).fit(dset)
    rows = dset.holdout.rows
    att = summarise(oracle, rows, methods=["integrated_gradients", "occlusion", "gradient_x_input"], surrogates=[tree],
                    surrogate_labels=["tree_6"], distillation=dset, max_rows=120, random_state=0)
    return oracle, dset, tree, rows, att


def test_summary_speaks_in_raw_features_and_matches_the_methods(gathered):
    oracle, dset, tree, rows, att = gathered
    assert att["n"] == 120 and [m["name"] for m in att["methods"]] == ["integrated_gradients", "occlusion", "gradient_x_input"]
    # The rows explained: 120 of the held-out rows, drawn with the seed.
    pick = rows.iloc[np.sort(np.random.default_rng(0).choice(len(rows), 120, replace=False))].reset_index(drop=True)
    ig = integrated_gradients(oracle, pick, baseline="median")
    want = global_importance(ig, by="abs")
    got = att["methods"][0]["importance"]
    assert list(got) == [str(c) for c in rows.columns]
    np.testing.assert_allclose([got[f] for f in want.index], want.to_numpy(), rtol=1e-6)
    assert att["methods"][0]["top"][0] == want.idxmax()
    occ = occlusion(oracle, pick, baseline="median")
    np.testing.assert_allclose([att["methods"][1]["importance"][f] for f in occ.features],
                               np.abs(occ.values).mean(axis=0), rtol=1e-6)
    # Completeness: IG promises it; occlusion does not.
    comp = att["methods"][0]["evaluation"]["completeness"]
    assert comp is not None and comp["relative"] == pytest.approx(np.abs(ig.delta).mean() / comp["mean_abs_gap"], rel=1e-6)
    assert att["methods"][1]["evaluation"]["completeness"] is None
    per_class = att["methods"][0]["per_class"]
    assert set(per_class) <= set(CLASSES)


def test_pairing_uses_the_surrogates_permutation_importance(gathered):
    oracle, dset, tree, rows, att = gathered
    assert len(att["pairing"]) == 3 and {r["surrogate"] for r in att["pairing"]} == {"tree_6"}
    sur = surrogate_importance(tree, dset, random_state=0)
    imp = pd.Series(att["methods"][1]["importance"])
    r = rank_agreement(imp, sur, k=5)
    row = next(p for p in att["pairing"] if p["method"] == "occlusion")
    assert row["spearman"] == pytest.approx(r.spearman) and row["top_k"] == pytest.approx(r.top_k_overlap)
    # Its interval resamples the explained rows, the surrogate's ranking held fixed.
    pick = rows.iloc[np.sort(np.random.default_rng(0).choice(len(rows), 120, replace=False))].reset_index(drop=True)
    want = rank_agreement(occlusion(oracle, pick, baseline="median"), sur, k=5, random_state=0)
    assert row["spearman_ci"] == pytest.approx(want.spearman_ci, abs=1e-9)
    assert row["spearman_ci"][0] <= row["spearman"] <= row["spearman_ci"][1]
    assert att["intervals"]["level"] == 0.95
    assert att["intervals"]["methods"]["pairing.spearman"] == (
        "percentile bootstrap, 200 resamples of the 120 explained rows (the surrogate's permutation importance held "
        "fixed: it has no per-row values), seed 0")


def test_selected_rows_are_the_most_and_least_confident(gathered):
    oracle, dset, tree, rows, att = gathered
    labels = rows.index[np.sort(np.random.default_rng(0).choice(len(rows), 120, replace=False))]
    pick = rows.loc[labels]
    proba = oracle.predict_proba(pick)
    conf = proba.max(axis=1)
    label = proba.argmax(axis=1)
    insts = att["instances"]
    # A row is named by its label in the rows given, as text, never by its position among
    # the rows sampled.
    names = [str(v) for v in labels]
    least = next(i for i in insts if i["why"] == "least confident")
    assert least["row"] == names[int(np.argmin(conf))]
    for i in insts:
        at = names.index(i["row"])
        if i["why"].startswith("most confident"):
            c = list(CLASSES).index(i["why"].split()[-1])
            assert at == int(np.flatnonzero(label == c)[np.argmax(conf[label == c])])
        assert i["output"] == pytest.approx(conf[at], abs=1e-5)
        assert set(i["attributions"]) == {str(c) for c in rows.columns}


def test_selected_rows_carry_the_identity_of_the_rows_given(gathered):
    oracle, dset, tree, rows, _ = gathered
    named = rows.iloc[:40].set_axis([f"app-{1000 + 7 * k}" for k in range(40)])
    att = summarise(oracle, named, methods=["occlusion"], max_rows=25, random_state=3)
    numeric = [f for f in named.columns if pd.api.types.is_float_dtype(named[f])]
    assert att["instances"] and numeric
    for inst in att["instances"]:
        row = named.loc[inst["row"]]  # a label of the rows given...
        for f in numeric:  # ...whose values are that row's
            shown = inst["values"][f]
            assert shown == "missing" if pd.isna(row[f]) else shown == pytest.approx(row[f], rel=1e-3)


def test_sanity_reads_magnitude_maps_by_magnitude_and_signed_maps_by_sign():
    steps = [{"spearman_abs": 1.0, "spearman": 1.0}, {"spearman_abs": 0.7, "spearman": 0.05}]

    class A:
        pass

    signed, magnitude = A(), A()
    signed.values = np.array([[0.5, -0.2]])
    magnitude.values = np.array([[0.5, 0.2]])
    s = _sanity("integrated_gradients", signed, {"steps": steps, "threshold": 0.5})
    assert s["passed"] is True and s["final_similarity"] == 0.05 and "|" not in s["measure"]
    m = _sanity("saliency", magnitude, {"steps": steps, "threshold": 0.5})
    assert m["passed"] is False and m["final_similarity"] == 0.7 and "|attribution|" in m["measure"]


def test_other_models_get_occlusion_and_shapley(credit):
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    X, y = credit
    X = X.iloc[:400]
    nums = [c for c in X.columns if X[c].dtype.kind in "fi"]
    cats = [c for c in X.columns if c not in nums]
    X = X.fillna({**{c: 0.0 for c in nums}, **{c: "missing" for c in cats}})
    pipe = make_pipeline(ColumnTransformer([("n", StandardScaler(), nums),
                                            ("c", OneHotEncoder(handle_unknown="ignore"), cats)]),
                         LogisticRegression(max_iter=500)).fit(X, y.iloc[:400])
    oracle = Oracle(pipe, verbose=0)
    att = summarise(oracle, X.iloc[:50], max_rows=50)
    assert [m["name"] for m in att["methods"]] == ["occlusion", "shapley"]
    assert all(m["evaluation"]["sanity"] is None for m in att["methods"])
    # Shapley values only query the model: a scikit-learn pipeline gets them, additive. Eleven
    # players over 50 background rows are more model rows a row than "auto" enumerates for a model
    # that is not a torch network: sampled pairs, with their standard error.
    shap = att["shapley"]
    assert shap["method"] == "paired" and shap["n"] == 50 and shap["background"]["rows"] == 50
    assert shap["standard_error"] > 0
    assert max(abs(r["delta"]) for r in shap["rows"]) < 1e-9
    with pytest.raises(ParameterError, match="integrated_gradients.*torch"):
        summarise(oracle, X.iloc[:50], methods=["integrated_gradients"])
    with pytest.raises(ParameterError, match="unknown attribution method"):
        summarise(oracle, X.iloc[:50], methods=["shapley_magic"])


def test_the_page_shows_and_escapes_the_attributions(gathered):
    oracle, dset, tree, rows, att = gathered
    from pellucid.fidelity import evaluate

    hostile = json.loads(json.dumps(att).replace('"income"', json.dumps(HOSTILE)))
    p = build_payload(model=oracle.describe(), schema=dset.schema, dset=dset, surrogates=[tree],
                      fidelities=[evaluate(tree, rows=dset)], attributions=hostile)
    html = render_html(p)
    section = html[html.index('<section id="attributions">'):]
    section = section[:section.index("</section>")]
    assert HOSTILE not in html and "&lt;script&gt;" in section
    assert section.count("<svg") == 2 + len(att["instances"])  # importance, curves, one per row
    for m in att["methods"]:
        assert m["label"] in section
    assert "Spearman rank correlation" in section and 'href="#attributions"' in html
    p_none = build_payload(model=oracle.describe(), schema=dset.schema, dset=dset, surrogates=[tree],
                           fidelities=[evaluate(tree, rows=dset)])
    assert p_none["attributions"] is None and 'id="attributions"' not in render_html(p_none)


def test_every_attribution_key_is_documented(gathered):
    att = gathered[-1]
    doc = (Path(__file__).parent.parent / "docs" / "report-json.md").read_text(encoding="utf-8")
    m = att["methods"][0]
    groups = [att, m, m["evaluation"], m["evaluation"]["sanity"], att["pairing"][0], att["instances"][0],
              m["evaluation"]["curves"]]
    missing = sorted({k for g in groups for k in g if f"`{k}`" not in doc})
    assert not missing, f"keys not in docs/report-json.md: {missing}"
    assert re.search(r"`attributions`", doc)


def test_image_report_draws_each_method_and_escapes(tmp_path):
    from pellucid.attribution import grad_cam, saliency
    from pellucid.attribution.summary import summarise_images
    from pellucid.reports import build_image_report

    from . import _nets

    x = _nets.digits()[0][:40]
    net = _nets.digits_cnn()
    s = summarise_images(net, x, methods=["saliency", "grad_cam"], classes=[f"digit {d}" for d in range(10)],
                         n_show=4, sanity=False)
    assert [m["name"] for m in s["methods"]] == ["saliency", "grad_cam"] and len(s["examples"]) == 4
    sal, cam = saliency(net, x), grad_cam(net, x)
    for ex in s["examples"]:
        i = ex["index"]
        np.testing.assert_allclose(ex["maps"]["saliency"], sal.values[i].mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(ex["maps"]["grad_cam"], cam.values[i], atol=1e-6)
        assert ex["target"] == f"digit {int(net(x[i:i + 1]).detach().argmax())}"
    # The most confident image of each predicted class first, one class after another.
    first = s["examples"][0]
    logits = net(x).detach().numpy()
    pred = logits.argmax(1)
    mates = np.flatnonzero(pred == pred[first["index"]])
    assert first["output"] == pytest.approx(float(logits[mates, pred[first["index"]]].max()), rel=1e-5)
    html_path, json_path = build_image_report(s, tmp_path, meta={"title": HOSTILE})
    html = html_path.read_text()
    assert HOSTILE not in html and "&lt;script&gt;" in html and html.count("<svg") == 1
    assert json.loads(json_path.read_text())["attributions"]["n"] == 40
    with pytest.raises(ParameterError, match="shape"):
        summarise_images(net, x[0])


def test_a_regression_s_attributions_read_as_sentences_about_a_regression():
    # A regression on a plain callable: Shapley values on fewer rows than the other methods, and
    # rows picked by their output, not by a class's confidence.
    from pellucid.fidelity import evaluate

    from .conftest import mixed_frame
    from .test_tree import mixed_oracle

    oracle = mixed_oracle(task="regression")
    dset = distill(oracle, mixed_frame(400, seed=2), n=600, random_state=0)
    att = summarise(oracle, dset.holdout.rows, methods=["occlusion", "shapley"], distillation=dset, max_rows=50,
                    shapley_rows=30, random_state=0)
    assert att["shapley"]["n"] == 30 != att["n"] == 50
    tree = DecisionTree(max_leaf_nodes=4, random_state=0).fit(dset)
    page = render_html(build_payload(model=oracle.describe(), schema=dset.schema, dset=dset, surrogates=[tree],
                                     fidelities=[evaluate(tree, rows=dset)], attributions=att))
    section = page[page.index('<section id="attributions">'):]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section[:section.index("</section>")])).replace("&#39;", "'")
    assert "the rows with the network's highest, median and lowest output" in text
    assert "confident" not in text  # no class to be confident of
    assert [i["why"] for i in att["instances"]] == ["highest output", "median output", "lowest output"]
    assert "the the" not in text and "on the network's output" in text
    assert ". Shapley values cost far more per row" in text  # a space after the sentence before it
