"""Reasons for a decision: LIME and Integrated Gradients agree on a one-feature model, the
table's shape, agreement columns and exports."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from pellucid import Oracle
from pellucid.attribution.decision_reasons import export_reasons, reasons
from pellucid.errors import DataFileError, ParameterError

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def one_feature():
    """A classifier whose logit is 2 * x2 only; rows well away from the median of x2."""
    rng = np.random.default_rng(0)
    ref = pd.DataFrame(rng.normal(size=(800, 4)), columns=["x0", "x1", "x2", "x3"])
    net = torch.nn.Linear(4, 1)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[0.0, 0.0, 2.0, 0.0]]))
        net.bias.fill_(-2.0 * float(ref["x2"].median()))
    oracle = Oracle(torch.nn.Sequential(net, torch.nn.Sigmoid()), classes=["no", "yes"], output="proba", verbose=0)
    rows = ref[np.abs(ref["x2"] - ref["x2"].median()) > 0.5].iloc[:12]
    return oracle, rows, ref


def test_the_only_feature_is_reason_one_for_both_and_they_agree(one_feature):
    oracle, rows, ref = one_feature
    table = reasons(oracle, rows, ref, k=3, num_samples=1000)
    assert list(table.index) == list(rows.index)
    assert (table["lime_reason_1"] == "x2").all()
    assert (table["integrated_gradients_reason_1"] == "x2").all()
    assert table[["lime_reason_2", "integrated_gradients_reason_2"]].isna().all().all()  # nothing else pushes
    assert (table["top3_overlap"] == 1.0).all() and table["top1_agree"].all()
    assert set(table["target"]) == {"no", "yes"}
    assert table["lime_text_1"].str.match(r"x2 = -?[0-9.]+ \(raises P\((?:no|yes)\) by ").all()


@pytest.mark.filterwarnings("ignore:Integrated Gradients. completeness gap")
def test_agreement_columns_and_methods(audit):
    oracle, X, _, _ = audit
    table = reasons(oracle, X.iloc[:10], X, k=2, num_samples=800)
    assert {"lime_reason_1", "lime_reason_2", "integrated_gradients_reason_2", "top2_overlap", "spearman"} <= set(
        table.columns)
    assert table["spearman"].between(-1, 1).all() and table["top2_overlap"].between(0, 1).all()
    assert table["spearman"].mean() > 0.3  # two honest methods on the same network mostly agree
    only = reasons(oracle, X.iloc[:3], X, methods=("lime",), num_samples=800)
    assert not any(c.startswith("integrated") for c in only.columns) and "spearman" not in only.columns
    with pytest.raises(ParameterError, match="methods"):
        reasons(oracle, X.iloc[:3], X, methods=("shap",))


def test_export_round_trips(one_feature, tmp_path):
    oracle, rows, ref = one_feature
    table = reasons(oracle, rows, ref, num_samples=500)
    for suffix in (".csv", ".parquet"):
        path = export_reasons(table, tmp_path / f"reasons{suffix}")
        back = pd.read_csv(path, index_col=0) if suffix == ".csv" else pd.read_parquet(path)
        assert list(back.index) == list(table.index)
        assert list(back.columns) == list(table.columns)
        pd.testing.assert_series_equal(back["lime_reason_1"], table["lime_reason_1"], check_dtype=False)
        np.testing.assert_allclose(back["spearman"].to_numpy(dtype=float), table["spearman"].to_numpy(dtype=float))
    with pytest.raises(DataFileError, match=r"\.csv or \.parquet"):
        export_reasons(table, tmp_path / "reasons.xlsx")
    with pytest.raises(DataFileError, match="does not exist"):
        export_reasons(table, tmp_path / "nowhere" / "reasons.csv")
