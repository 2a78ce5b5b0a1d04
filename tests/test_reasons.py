"""Principal reasons: against the closed form of a model linear in its log-odds (Shapley values
of a linear margin are w_j * (x_j - mean background x_j), exactly, for any order), ties and
negligible reasons marked, statements by feature and direction, the bad-input errors, the
command line and chunking that changes nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from pellucid import Oracle
from pellucid.attribution.decision_reasons import (
    compare_reasons,
    explain_chunks,
    export_reasons,
    read_statements,
    reason_plan,
    reason_stability,
    reasons,
)
from pellucid.cli import main
from pellucid.errors import DataFileError, ParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")

W = np.array([-1.0, 0.0, 2.0, 0.5])  # log-odds of "yes" per unit of x0..x3


def linear_logits(w=W, bias=-0.3):
    """Two logits whose gap (yes minus no) is ``w @ x + bias``."""
    net = torch.nn.Linear(len(w), 2).double()
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        net.weight[1] = torch.tensor(w)
        net.bias[1] = bias
    return Oracle(net, classes=["no", "yes"], verbose=0)


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    return pd.DataFrame(rng.normal(size=(400, 4)), columns=["x0", "x1", "x2", "x3"])


def test_contributions_are_the_closed_form_and_reasons_rank_what_raises_the_adverse_log_odds(table):
    oracle = linear_logits()
    out = reasons(oracle, table, adverse_class="yes", k=3, background_rows=60, random_state=1)
    plan = reason_plan(oracle, table, adverse_class="yes", k=3, background_rows=60, random_state=1)
    bg = plan.background.to_numpy(float)
    assert plan.reference_kind == "favourable rows" and len(bg) == 60
    # the background comes from the rows the network decides "no"
    assert (bg @ W - 0.3 < 0).all()
    X = table.to_numpy(float)
    want = W * (X - bg.mean(axis=0))  # exact for a linear margin, whatever the orders drawn
    score = X @ W - 0.3
    np.testing.assert_allclose(out["log_odds"], score, atol=1e-9)
    np.testing.assert_allclose(out["reference_log_odds"], (bg @ W - 0.3).mean(), atol=1e-9)
    adverse = score > 0
    assert (out["adverse"].to_numpy() == adverse).all() and (out["decision"] == np.where(adverse, "yes", "no")).all()
    for i, (_, row) in enumerate(out.iterrows()):
        if not adverse[i]:
            assert row["n_reasons"] == 0 and row[["reason_1", "reason_2", "reason_3"]].isna().all()
            continue
        positive = [j for j in np.argsort(-want[i], kind="stable") if want[i, j] > 0][:3]
        assert row["n_reasons"] == len(positive)  # never padded: x1 (weight 0) and pushes the other way are not reasons
        for q, j in enumerate(positive):
            assert row[f"reason_{q + 1}"] == f"x{j}"
            assert row[f"contribution_{q + 1}"] == pytest.approx(want[i, j], abs=1e-9)
            assert row[f"value_{q + 1}"] == np.format_float_positional(X[i, j], trim="-")
        for q in range(len(positive), 3):
            assert pd.isna(row[f"reason_{q + 1}"])
    assert "x1" not in set(out["reason_1"]) | set(out["reason_2"]) | set(out["reason_3"])
    assert out.attrs["reasons"]["scale"] == "log-odds of the adverse class"


def test_a_confident_decision_keeps_reasons_of_full_size():
    """Gaps of some 40 logits: probabilities round to 1, the log-odds do not; against one
    reference row the reasons are exact and add up to the gap's change."""
    oracle = linear_logits(w=np.array([20.0, 0.0, 10.0, 1e-5]), bias=0.0)
    rows = pd.DataFrame({"x0": [1.5], "x1": [0.0], "x2": [1.0], "x3": [2.0]})
    ref = pd.Series({"x0": 0.0, "x1": 0.0, "x2": 0.0, "x3": 0.0})
    out = reasons(oracle, rows, reference=ref, adverse_class="yes")
    r = out.iloc[0]
    assert out.attrs["reasons"]["shapley_method"] == "exact" and out.attrs["reasons"]["reference"] == "row"
    assert r["log_odds"] == pytest.approx(40.00002) and r["reference_log_odds"] == pytest.approx(0.0)
    assert (r["reason_1"], r["reason_2"], r["reason_3"]) == ("x0", "x2", "x3")
    assert r["contribution_1"] == pytest.approx(30.0) and r["contribution_2"] == pytest.approx(10.0)
    assert r["note_3"] == "negligible" and r["contribution_3"] == pytest.approx(2e-5)
    assert pd.isna(r["note_1"]) and "se_1" not in out.columns  # exact values carry no standard error
    assert (r["reference_value_1"], r["value_1"]) == ("0", "1.5")


def test_ties_are_marked_not_broken_silently():
    oracle = linear_logits(w=np.array([1.0, 1.0, 3.0, 1.0]), bias=0.0)
    rows = pd.DataFrame({"x0": [1.5], "x1": [1.5], "x2": [1.0], "x3": [1.5]})
    ref = pd.DataFrame({"x0": [0.0], "x1": [0.0], "x2": [0.0], "x3": [0.0]})
    r = reasons(oracle, rows, reference=ref, adverse_class="yes", k=3).iloc[0]
    assert (r["reason_1"], r["reason_2"], r["reason_3"]) == ("x2", "x0", "x1")  # ties keep the columns' order
    assert pd.isna(r["note_1"])
    assert r["note_2"] == "tied with reason 3" and r["note_3"] == "tied with reason 2; tied with x3 (not listed)"


def _sampled_plan(credit_net, credit):
    """Reasons by sampled Shapley values of the credit network: the oracle, the plan and the rows."""
    X, _ = credit
    net, pre = credit_net
    oracle = Oracle(net, preprocess=pre, classes=["good", "bad"], verbose=0)
    return oracle, reason_plan(oracle, X, adverse_class="bad", background_rows=30, n_samples=120, random_state=0), X


def test_sampled_reasons_carry_standard_errors_and_agree_with_exact(credit_net, credit):
    oracle, plan, X = _sampled_plan(credit_net, credit)
    rows = X.iloc[:200]
    out = plan.explain(rows)
    from pellucid.attribution.shapley import shapley

    exact = shapley(oracle, rows, plan.background, target="bad", output="margin", method="exact")
    adv = np.flatnonzero(out["adverse"].to_numpy())
    assert len(adv) >= 10
    names = list(X.columns)
    for i in adv:
        row = out.iloc[i]
        for q in range(int(row["n_reasons"])):
            j = names.index(row[f"reason_{q + 1}"])
            z = (row[f"contribution_{q + 1}"] - exact.values[i, j]) / row[f"se_{q + 1}"]
            assert abs(z) < 5, (i, q, z)
    np.testing.assert_allclose(out["log_odds"] - out["reference_log_odds"], exact.values.sum(1), atol=1e-6)
    # chunks change nothing (the same row's draws wherever it falls), and neither does explaining it alone
    again = pd.concat(list(explain_chunks(plan, rows, 37)))
    pd.testing.assert_frame_equal(again, out, check_exact=False, atol=1e-5)
    alone = plan.explain(rows.iloc[[int(adv[0])]])
    assert alone["reason_1"].iloc[0] == out["reason_1"].iloc[int(adv[0])]


def test_stability_reads_the_reasons_already_computed_as_it_would_compute_them(credit_net, credit):
    """The run hands reason_stability the rows of its reasons table instead of explaining them
    again: the comparisons come out as when it explains them itself, and a table of other
    rows is refused."""
    _, plan, X = _sampled_plan(credit_net, credit)
    rows = X.iloc[:240]
    table = plan.explain(rows)
    pick = np.flatnonzero(table["adverse"].to_numpy())[::2]
    assert len(pick) >= 10
    given = reason_stability(plan, rows.iloc[pick], table=table.iloc[pick])
    assert given == reason_stability(plan, rows.iloc[pick])
    with pytest.raises(ParameterError, match="reasons table of rows"):
        reason_stability(plan, rows.iloc[pick], table=table.iloc[pick[1:]])


def test_statements_by_feature_and_direction(table, tmp_path):
    oracle = linear_logits()
    csv = tmp_path / "statements.csv"
    csv.write_text("feature,direction,statement\nx2,high,Too much x2\nx0,low,Too little x0\nx3,,Any x3\n")
    said = read_statements(csv, list(table.columns), {c: True for c in table.columns})
    assert said == {"x2": {"high": "Too much x2"}, "x0": {"low": "Too little x0"}, "x3": {"any": "Any x3"}}
    out = reasons(oracle, table, adverse_class="yes", statements=csv)
    adv = out[out["adverse"]]
    for _, row in adv.iterrows():
        for q in range(int(row["n_reasons"])):
            f, st = row[f"reason_{q + 1}"], row[f"statement_{q + 1}"]
            high = float(row[f"value_{q + 1}"]) > float(row[f"reference_value_{q + 1}"])
            if f == "x2":
                assert st == ("Too much x2" if high else None)
            elif f == "x0":
                assert st == (None if high else "Too little x0")
            else:
                assert st == "Any x3"
    listed = {x for v in adv["without_statement"].dropna() for x in v.split("; ")}
    assert listed <= {"x0 (high)", "x2 (low)"}  # a direction with no sentence is named
    assert adv["statement_1"].notna().any()
    # YAML with a sentence for a whole feature, TOML by direction; the same lookups
    (tmp_path / "s.yaml").write_text("x2: Too much x2\n")
    (tmp_path / "s.toml").write_text('[x0]\nlow = "Too little x0"\n')
    assert read_statements(tmp_path / "s.yaml", list(table.columns)) == {"x2": {"any": "Too much x2"}}
    assert read_statements(tmp_path / "s.toml", list(table.columns)) == {"x0": {"low": "Too little x0"}}


def test_bad_input_gets_one_clear_error(table, tmp_path):
    oracle = linear_logits()
    with pytest.raises(ParameterError, match=r"adverse_class= .*\['no', 'yes'\]"):
        reasons(oracle, table)
    with pytest.raises(ParameterError, match="'maybe' is not one of the model's classes"):
        reasons(oracle, table, adverse_class="maybe")
    with pytest.raises(ParameterError, match="k must be"):
        reasons(oracle, table, adverse_class="yes", k=0)
    with pytest.raises(ParameterError, match=r"reference has columns other than the features \(missing \['x3'\]"):
        reasons(oracle, table, adverse_class="yes", reference=table.drop(columns="x3"))
    with pytest.raises(ParameterError, match=r"'income' is not a feature"):
        reasons(oracle, table, adverse_class="yes", statements={"income": "Low income"})
    with pytest.raises(ParameterError, match="direction 'up' of the numeric feature 'x2'"):
        reasons(oracle, table, adverse_class="yes", statements={"x2": {"up": "Too much x2"}})
    with pytest.raises(DataFileError, match="needs the columns 'feature' and 'statement'"):
        (tmp_path / "bad.csv").write_text("name,text\nx2,Too much\n")
        reasons(oracle, table, adverse_class="yes", statements=tmp_path / "bad.csv")
    with pytest.raises(ParameterError, match="method must be one of"):
        reasons(oracle, table, adverse_class="yes", method="shap")
    reg = Oracle(torch.nn.Linear(4, 1).double(), task="regression", verbose=0)
    with pytest.raises(ParameterError, match="this model is a regressor"):
        reasons(reg, table, adverse_class="yes")
    everyone = linear_logits(bias=50.0)  # every row decided "yes": no favourable reference
    with pytest.raises(ParameterError, match="0 of the 400 rows get a favourable decision"):
        reasons(everyone, table, adverse_class="yes")


def test_lime_and_stability_on_one_feature():
    """Only x2 moves the log-odds: LIME on the log-odds and Shapley values both give x2 alone,
    and every stability comparison agrees fully."""
    rng = np.random.default_rng(1)
    table = pd.DataFrame(rng.normal(size=(300, 4)), columns=["x0", "x1", "x2", "x3"])
    oracle = linear_logits(w=np.array([0.0, 0.0, 2.0, 0.0]), bias=-1.0)
    lime_out = reasons(oracle, table.iloc[:40], reference=table, adverse_class="yes", method="lime",
                       lime_kwargs={"num_samples": 600})
    adv = lime_out[lime_out["adverse"]]
    assert len(adv) and (adv["reason_1"] == "x2").all() and (adv["n_reasons"] >= 1).all()
    plan = reason_plan(oracle, table, adverse_class="yes", background_rows=20, random_state=0)
    st = reason_stability(plan, table.iloc[:60])
    assert st["another_seed"]["first_reason_same"] == 1.0 and st["lime"]["first_reason_same"] == 1.0
    a = plan.explain(table.iloc[:60])
    assert compare_reasons(a, a, plan.k)["top_k_overlap"] == 1.0


def test_the_command_line_writes_every_row_and_its_settings(tmp_path, table):
    data = table.assign(app=[f"A{i}" for i in range(len(table))], truth=0)
    data.to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "model.py").write_text(
        "import torch\n"
        "def model():\n"
        "    net = torch.nn.Linear(4, 2).double()\n"
        "    with torch.no_grad():\n"
        "        net.weight.zero_(); net.bias.zero_()\n"
        f"        net.weight[1] = torch.tensor({W.tolist()}, dtype=torch.float64); net.bias[1] = -0.3\n"
        "    return net\n")
    (tmp_path / "st.csv").write_text("feature,direction,statement\nx2,high,Too much x2\n")
    base = ["reasons", "--model", str(tmp_path / "model.py") + ":model", "--data", str(tmp_path / "rows.csv"),
            "--classes", "no,yes", "--id-column", "app", "--target", "truth", "--quiet"]
    out = tmp_path / "reasons.csv"
    assert main(base + ["--adverse-class", "yes", "--out", str(out), "--statements", str(tmp_path / "st.csv"),
                        "--stability", "50"]) == 0
    got = pd.read_csv(out, index_col=0)
    assert list(got.index) == list(data["app"]) and "truth" not in got.columns
    api = reasons(linear_logits(), table.set_axis(pd.Index(data["app"], name="app")), adverse_class="yes",
                  statements={"x2": {"high": "Too much x2"}})
    np.testing.assert_allclose(got["contribution_1"], api["contribution_1"], atol=1e-9)
    assert (got["reason_1"].fillna("") == api["reason_1"].fillna("")).all()
    record = json.loads((tmp_path / "reasons.csv.json").read_text())
    assert record["rows"] == 400 and record["adverse"] == int(api["adverse"].sum())
    assert sum(record["first_reason"].values()) == int(api["reason_1"].notna().sum())
    assert "another_seed" in record["stability"] and record["settings"]["adverse_class"] == "yes"
    parquet = tmp_path / "reasons.parquet"
    assert main(base + ["--adverse-class", "yes", "--out", str(parquet), "--chunk-rows", "64"]) == 0
    back = pd.read_parquet(parquet)
    np.testing.assert_allclose(back["contribution_1"], api["contribution_1"], atol=1e-9)


@pytest.mark.parametrize("extra, message", [
    (["--adverse-class", "maybe"], "'maybe' is not one of the model's classes"),
    (["--adverse-class", "yes", "--k", "0"], "--k must be at least 1"),
    (["--adverse-class", "yes", "--statements", "{st}"], "'income' is not a feature"),
    (["--adverse-class", "yes", "--out", "{data}"], "is an input of this run"),
    (["--adverse-class", "yes", "--out", "{dir}/r.xlsx"], "use a .csv or .parquet file name"),
])
def test_the_command_line_stops_on_bad_input_with_one_line(tmp_path, table, capsys, extra, message):
    table.to_csv(tmp_path / "rows.csv", index=False)
    (tmp_path / "model.py").write_text("import torch\ndef model():\n    return torch.nn.Linear(4, 2)\n")
    (tmp_path / "st.csv").write_text("feature,statement\nincome,Low income\n")
    extra = [e.format(st=tmp_path / "st.csv", data=tmp_path / "rows.csv", dir=tmp_path) for e in extra]
    args = ["reasons", "--model", str(tmp_path / "model.py") + ":model", "--data", str(tmp_path / "rows.csv"),
            "--classes", "no,yes", "--out", str(tmp_path / "r.csv")] + extra
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "r.csv").exists()


def test_export_round_trips(table, tmp_path):
    out = reasons(linear_logits(), table.iloc[:50], reference=table, adverse_class="yes")
    for suffix in (".csv", ".parquet"):
        path = export_reasons(out, tmp_path / f"reasons{suffix}")
        back = pd.read_csv(path, index_col=0) if suffix == ".csv" else pd.read_parquet(path)
        assert list(back.index) == list(out.index) and list(back.columns) == list(out.columns)
        np.testing.assert_allclose(back["contribution_1"].to_numpy(float), out["contribution_1"].to_numpy(float))
    with pytest.raises(DataFileError, match=r"\.csv or \.parquet"):
        export_reasons(out, tmp_path / "reasons.xlsx")
    with pytest.raises(DataFileError, match="does not exist"):
        export_reasons(out, tmp_path / "nowhere" / "reasons.csv")
