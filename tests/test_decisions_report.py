"""Principal reasons, counterfactuals and groups in the explain run's report: every number in
report.json's ``decisions`` and in each single decision is recomputed here from the rows with
the public functions, the counterfactual is asked of the network again, the page escapes what
comes from the data, and the limitation names a group where the surrogate is less faithful."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from pellucid import Oracle, explain, reasons
from pellucid.demo import CLASSES, TARGET
from pellucid.errors import ParameterError
from pellucid.fidelity.groups import group_fidelity
from pellucid.reports import validate_report
from pellucid.reports.limitations import find_limitations

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def run(credit, credit_net, tmp_path_factory):
    X, y = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES), verbose=0)
    df = X.iloc[:800].assign(**{TARGET: y.iloc[:800].to_numpy()})
    out = tmp_path_factory.mktemp("decisions")
    r = explain(oracle, df, target=TARGET, out_dir=out, n=1500, sizes=[4], n_boot=0, attributions=False,
                adverse_class="bad", groups=["region", "age"], immutable=["age"],
                statements={"income": {"low": "Income insufficient for amount of credit requested"}}, verbose=0)
    return r, oracle, df, json.loads((out / "report.json").read_text(encoding="utf-8")), \
        (out / "report.html").read_text("utf-8")


def test_the_summary_is_the_reasons_of_the_held_out_rows(run):
    r, oracle, df, p, _ = run
    validate_report(p)
    assert p["schema_version"] == "2.5"
    d = p["decisions"]
    hold = r.distillation.holdout
    observed = np.flatnonzero(hold.origin >= 0)
    rows = hold.rows.iloc[observed].set_axis(hold.row_ids(observed))
    assert d["n"] == len(rows)
    X = df.drop(columns=TARGET)
    again = reasons(oracle, rows, reference=X[oracle.predict(X) != "bad"], adverse_class="bad", random_state=0)
    # the default reference is the favourably decided rows of the whole table: the same plan
    assert d["reasons"]["settings"]["reference_rows"] == int((oracle.predict(X) != "bad").sum())
    adv = again[again["adverse"]]
    assert d["reasons"]["n_adverse"] == len(adv)
    first = {e["feature"]: e["rows"] for e in d["reasons"]["first_reason"]}
    assert first == adv["reason_1"].value_counts().to_dict()
    assert sum(first.values()) == len(adv)


def test_each_single_decision_has_its_reasons_and_a_checked_counterfactual(run):
    r, oracle, df, p, html = run
    X = df.drop(columns=TARGET)
    ref = X[oracle.predict(X) != "bad"]
    seen_cf = 0
    for row in p["local"]["rows"]:
        rs = row["reasons"]
        values = pd.DataFrame([row["values"]]).replace("missing", np.nan)
        values = values.astype({c: X[c].dtype for c in X.columns}, errors="ignore")[list(X.columns)]
        decided = oracle.predict(values)[0]
        assert rs["decision"] == decided and rs["adverse"] == (decided == "bad")
        if not rs["adverse"]:
            assert rs["items"] == [] and row["counterfactual"] is None
            continue
        one = reasons(oracle, values, reference=ref, adverse_class="bad", random_state=0).iloc[0]
        assert [it["feature"] for it in rs["items"]] == [one[f"reason_{i + 1}"] for i in range(int(one["n_reasons"]))]
        for it in rs["items"]:
            low_income = it["feature"] == "income" and float(it["value"]) < float(it["reference_value"])
            assert it["statement"] == ("Income insufficient for amount of credit requested" if low_income else None)
        cf = row["counterfactual"]
        assert cf["immutable"] == ["age"]
        if cf["found"]:
            changed = values.copy()
            for part in cf["changes"].split("; "):
                f, change = part.split(": ", 1)
                new = change.split(" -> ")[1]
                assert f != "age"
                changed[f] = float(new) if pd.api.types.is_numeric_dtype(X[f]) else new
            changed = changed.astype({c: X[c].dtype for c in X.columns}, errors="ignore")
            assert oracle.predict(changed)[0] == "good" and cf["valid"]
            seen_cf += 1
    assert seen_cf >= 1
    assert 'id="decisions"' in html and "What would change the decision" in html


def test_the_groups_table_is_group_fidelity_on_the_same_rows(run):
    r, oracle, df, p, _ = run
    g = p["decisions"]["groups"]
    hold = r.distillation.holdout
    observed = np.flatnonzero(hold.origin >= 0)
    rows = hold.rows.iloc[observed].set_axis(hold.row_ids(observed))
    truth = df[TARGET].to_numpy()[hold.origin[observed]]
    surrogate = r.recommended
    want = group_fidelity(oracle, rows, ["region", "age"], target=truth, surrogate=surrogate, favourable="good")
    assert g["favourable"] == "good" and g["columns"] == ["region", "age"]
    assert [(t["column"], t["group"], t["rows"]) for t in g["table"]] == list(
        zip(want["column"], want["group"], want["rows"], strict=True))
    np.testing.assert_allclose([t["agreement"] for t in g["table"]], want["agreement"].to_numpy(dtype=float))
    np.testing.assert_allclose([t["accuracy"] for t in g["table"]], want["accuracy"].to_numpy(dtype=float))



def test_groups_by_a_column_the_model_does_not_take(credit, credit_net, tmp_path):
    # A fairness audit groups by an attribute the model is kept from: the column is set aside
    # for the comparison (not refused as a column the model does not take, not a feature).
    X, y = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES), verbose=0)
    df = X.iloc[:600].assign(sex=np.random.default_rng(3).choice(["female", "male", "other"], 600),
                             **{TARGET: y.iloc[:600].to_numpy()})
    r = explain(oracle, df, target=TARGET, out_dir=tmp_path, n=1000, sizes=[4], n_boot=0, attributions=False,
                local=False, groups=["sex", "region"], verbose=0)
    p = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    validate_report(p)
    assert "sex" not in [f["name"] for f in p["data"]["schema"]["features"]]
    g = p["decisions"]["groups"]
    assert g["columns"] == ["sex", "region"] and g["not_inputs"] == ["sex"] and g["favourable"] is None
    hold = r.distillation.holdout
    observed = np.flatnonzero(hold.origin >= 0)
    rows = hold.rows.iloc[observed].set_axis(hold.row_ids(observed))
    # Each held-out row's own value of the column, found by its position in the table.
    data = pd.DataFrame({"sex": df["sex"].to_numpy()[hold.origin[observed]], "region": rows["region"].to_numpy()})
    want = group_fidelity(oracle, rows, ["sex", "region"], target=df[TARGET].to_numpy()[hold.origin[observed]],
                          surrogate=r.recommended, group_data=data)
    assert [(t["column"], t["group"], t["rows"]) for t in g["table"]] == list(
        zip(want["column"], want["group"], want["rows"], strict=True))
    np.testing.assert_allclose([t["agreement"] for t in g["table"]], want["agreement"].to_numpy(dtype=float))
    np.testing.assert_allclose([t["accuracy"] for t in g["table"]], want["accuracy"].to_numpy(dtype=float))
    page = (tmp_path / "report.html").read_text("utf-8")
    assert "sex: a column of the data that is not an input of the model" in page
    assert "Decided" not in page[page.index('id="decisions"'):]  # no favourable class, no such column


def test_a_group_with_lower_fidelity_is_a_limitation(run):
    _, _, _, p, _ = run
    q = json.loads(json.dumps(p))
    q["decisions"]["groups"]["table"][1]["lower_fidelity"] = True
    found = [f for f in find_limitations(q) if f["kind"] == "group_fidelity"]
    assert len(found) == 1 and found[0]["items"][0]["group"] == q["decisions"]["groups"]["table"][1]["group"]
    assert not [f for f in find_limitations(p) if f["kind"] == "group_fidelity" and
                not any(t["lower_fidelity"] for t in p["decisions"]["groups"]["table"])]


def test_strings_from_the_data_are_escaped(credit, credit_net, tmp_path):
    X, y = credit
    net, pre = credit_net
    hostile = '<b>&"'
    oracle = Oracle(net, preprocess=pre, classes=["good", hostile], verbose=0)
    df = X.iloc[:300]
    explain(oracle, df, out_dir=tmp_path, n=600, sizes=[4], n_boot=0, attributions=False, adverse_class=hostile,
            groups=["region"], verbose=0)
    html = (tmp_path / "report.html").read_text("utf-8")
    assert hostile not in html and "&lt;b&gt;&amp;" in html


def test_bad_options_stop_before_any_work(credit, credit_net):
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES), verbose=0)
    with pytest.raises(ParameterError, match=r"groups names \['Marital'\], which are not features"):
        explain(oracle, X.iloc[:200], out_dir=None, groups=["Marital"], verbose=0)
    with pytest.raises(ParameterError, match=r"immutable names \['height'\]"):
        explain(oracle, X.iloc[:200], out_dir=None, immutable=["height"], verbose=0)
    with pytest.raises(ParameterError, match="'salary' is not a feature"):
        explain(oracle, X.iloc[:200], out_dir=None, adverse_class="bad", statements={"salary": "Low"}, verbose=0)
    with pytest.raises(ParameterError, match="groups 'one' holds a single value"):
        explain(oracle, X.iloc[:200].assign(one=1.0), out_dir=None, groups=["one"], verbose=0)
    with pytest.raises(ParameterError, match=r"monotone: \['home'\] are not numeric features"):
        explain(oracle, X.iloc[:200], out_dir=None, monotone={"home": "increase"}, verbose=0)
    with pytest.raises(ParameterError, match="adverse_class .ugly. is not one of the model's classes"):
        explain(oracle, X.iloc[:200], out_dir=None, adverse_class="ugly", verbose=0)


def test_a_card_sets_up_the_run_and_protected_attributes_are_flagged(credit, credit_net, tmp_path):
    X, y = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, classes=list(CLASSES), verbose=0)
    card = {"model_name": "credit", "decision": {"adverse_class": "bad"},
            "features": {"protected": ["home"], "monotone": {"income": "increase"}}, "groups": {"columns": ["region"]}}
    r = explain(oracle, X.iloc[:600], out_dir=tmp_path, n=1200, sizes=[4], n_boot=0, attributions=False, card=card,
                verbose=0)
    p = r.payload
    validate_report(p)
    assert p["card"]["settings"] == {"adverse_class": "bad", "protected": ["home"],
                                     "monotone": {"income": "increase"}, "groups": ["region"]}
    st = p["decisions"]["reasons"]["stability"]
    assert st["rows"] > 0 and 0 <= st["another_seed"]["top_k_overlap"] <= 1 and "lime" in st
    d = p["decisions"]
    assert d["protected"] == ["home"] and d["groups"]["columns"] == ["region"]
    assert d["reasons"]["settings"]["adverse_class"] == "bad"
    for row in p["local"]["rows"]:
        cf = row.get("counterfactual")
        if cf and cf["found"]:
            assert "home" in cf["immutable"] and "home:" not in cf["changes"]
            assert cf["monotone"] == {"income": "increase"}
            for part in cf["changes"].split("; "):
                if part.startswith("income: "):
                    old_v, new_v = (float(v) for v in part.split(": ")[1].split(" -> "))
                    assert new_v > old_v
    any_home = [e for e in d["reasons"]["any_reason"] if e["feature"] == "home"]
    assert all(e["protected"] for e in any_home)
    found = [f for f in p["limitations"] if f["kind"] == "protected_feature"]
    rules_home = [rl["text"] for rl in p["surrogates"][p["recommended"]]["rules"]
                  if any(c["feature"] == "home" for c in rl["conditions"])]
    expected = bool(any_home) or bool(rules_home)
    assert bool(found) == expected
    if found:
        listed = {i.get("rule") for i in found[0]["items"] if "rule" in i}
        assert listed == set(rules_home)


def test_card_settings_are_checked():
    from pellucid.errors import DataFileError
    from pellucid.reports.card import validate_card

    with pytest.raises(DataFileError, match=r"\[features\] has unknown key\(s\) \['mutable'\]"):
        validate_card({"features": {"mutable": ["age"]}})
    with pytest.raises(DataFileError, match=r"\[groups\] columns must be a list of feature names"):
        validate_card({"groups": {"columns": "region"}})
    assert "settings" not in validate_card({"model_name": "m"})
