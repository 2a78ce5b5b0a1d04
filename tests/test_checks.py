"""The checks pellucid makes on models and data (docs/errors.md), end to end: at the command
line each mistake ends the run with exit status 2 and one line naming what the user typed (the
flag, the column, the row); in Python it raises the error of its kind, naming the parameter."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch

from pellucid.demo import TARGET, make_credit

#: Flags that keep a run short when a check does not stop it.
FAST = ["--quiet", "--n", "500", "--sizes", "4", "--n-boot", "0", "--no-local", "--attributions", "none",
        "--no-scorecard"]

MODELS = textwrap.dedent(
    """
    import numpy as np
    import torch

    def rule(df):
        # A classifier on the credit table: probabilities of (good, bad) from the debt ratio.
        p = 1 / (1 + np.exp(-8 * (df["debt_ratio"].astype(float).to_numpy() - 0.5)))
        return np.column_stack([1 - p, p])

    def noisy(df):
        # The same with noise in every answer: not a function of its input.
        z = 8 * (df["debt_ratio"].astype(float).to_numpy() - 0.5) + np.random.normal(0, 0.5, len(df))
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def net():
        # A bare torch network on three numeric columns (a, b, c) that looks at the first only.
        m = torch.nn.Linear(3, 2)
        with torch.no_grad():
            m.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [12.0, 0.0, 0.0]]))
            m.bias.copy_(torch.tensor([0.0, -6.0]))
        return m

    def pipe():
        # A scikit-learn pipeline fitted on the credit table's features: it records their names.
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler
        from pellucid.demo import TARGET, make_credit

        df = make_credit(600, random_state=3)
        X, y = df.drop(columns=TARGET), df[TARGET]
        cats = ["home", "employment", "region"]
        pre = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
             [c for c in X.columns if c not in cats]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), cats)])
        return make_pipeline(pre, LogisticRegression(max_iter=500)).fit(X, y)
    """
)


def abc_table(n: int = 400, seed: int = 0):
    """Three numeric columns in [0, 1]; the network of ``net`` says 1 where a > 0.5."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.uniform(size=n), "b": rng.uniform(size=n), "c": rng.uniform(size=n)})


def explain(*args, timeout: int = 300) -> subprocess.CompletedProcess:
    """``python -m pellucid explain ARGS`` in a process of its own."""
    return subprocess.run([sys.executable, "-m", "pellucid", "explain", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def error_line(done: subprocess.CompletedProcess) -> str:
    """The one line a refused run prints, once the run is known to have exited with 2."""
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pellucid: error: "), done.stderr[-3000:]
    return lines[0]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("checks")
    (d / "models.py").write_text(MODELS)
    make_credit(400, random_state=4).to_csv(d / "credit.csv", index=False)
    return d


def test_target_values_that_are_not_classes(files, tmp_path):
    df = make_credit(400, random_state=4)
    df[TARGET] = df[TARGET].where(np.arange(len(df)) % 2 == 0, df[TARGET].replace({"bad": "Bad"}))
    df.to_csv(tmp_path / "labels.csv", index=False)
    first = int(np.flatnonzero(df[TARGET].to_numpy() == "Bad")[0])
    line = error_line(explain("--model", f"{files}/models.py:rule", "--data", tmp_path / "labels.csv",
                              "--target", TARGET, "--classes", "good,bad", "--out", tmp_path / "r", *FAST))
    assert f"target column '{TARGET}' (--target) holds value ['Bad']" in line
    assert f"first at row {first})" in line and "the network's classes are ['good', 'bad']" in line
    assert "(--classes)" in line
    assert not (tmp_path / "r").exists()


def test_nested_parquet_column(files, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    df = make_credit(100, random_state=4)
    table = pa.Table.from_pandas(df, preserve_index=False).append_column(
        "address", pa.array([{"city": "Oslo", "zip": i} for i in range(len(df))]))
    pq.write_table(table, tmp_path / "nested.parquet")
    line = error_line(explain("--model", f"{files}/models.py:rule", "--data", tmp_path / "nested.parquet",
                              "--target", TARGET, "--classes", "good,bad", "--out", tmp_path / "r", *FAST))
    assert "column 'address' is nested (struct<city: string, zip: int64>)" in line and "nested.parquet" in line


def test_a_word_in_a_numeric_column(files, tmp_path):
    df = make_credit(400, random_state=4)
    df["income"] = df["income"].astype(object)
    df.loc[17, "income"] = "abc"
    df.to_csv(tmp_path / "typo.csv", index=False)
    line = error_line(explain("--model", f"{files}/models.py:rule", "--data", tmp_path / "typo.csv",
                              "--target", TARGET, "--classes", "good,bad", "--out", tmp_path / "r", *FAST))
    assert "column 'income' row 17: 'abc' is not a number" in line and "--schema" in line


def _rule(df):
    p = 1 / (1 + np.exp(-8 * (df["debt_ratio"].astype(float).to_numpy() - 0.5)))
    return np.column_stack([1 - p, p])


def test_repeated_column_names_in_python():
    import pellucid
    from pellucid import Oracle, Schema, distill
    from pellucid.errors import SchemaError

    df = make_credit(100, random_state=4).rename(columns={"age": "income"})
    oracle = Oracle(_rule, classes=["good", "bad"])
    calls = {
        "explain": lambda: pellucid.explain(oracle, df, target=TARGET, out_dir=None, verbose=0),
        "distill": lambda: distill(oracle, df.drop(columns=TARGET), n=100),
        "from_frame": lambda: Schema.from_frame(df),
    }
    for name, call in calls.items():
        with pytest.raises(SchemaError, match=r"several columns with the same name: 'income' \(columns 0, 2,"):
            call()
    assert oracle.n_queries == 0



# ---------------------------------------------------------------------- columns (items 2 and 3)
def test_a_bare_network_takes_columns_by_position_and_the_report_says_so(files, tmp_path):
    abc_table()[["c", "a", "b"]].to_csv(tmp_path / "cab.csv", index=False)
    done = explain("--model", f"{files}/models.py:net", "--data", tmp_path / "cab.csv", "--classes", "no,yes",
                   "--out", tmp_path / "r", *FAST)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads((tmp_path / "r" / "report.json").read_text())
    inputs = payload["model"]["inputs"]
    assert inputs["matched"] == "by position" and inputs["columns"] == ["c", "a", "b"] and inputs["names_from"] is None
    page = (tmp_path / "r" / "report.html").read_text()
    assert "Taken by position: nothing records the names of the model&#39;s inputs" in page
    assert "(c, a, b)" in page
    # The network read c where it was trained on a: the rules say c, as the report's columns warn.
    best = payload["surrogates"][payload["recommended"]]
    assert {c["feature"] for r in best["rules"] for c in r["conditions"]} == {"c"}


def test_a_saved_schema_pins_the_columns_by_name(files, tmp_path):
    from pellucid import Schema

    train = abc_table(seed=1)
    Schema.from_frame(train).to_json(tmp_path / "schema.json")
    abc_table()[["c", "a", "b"]].to_csv(tmp_path / "cab.csv", index=False)
    done = explain("--model", f"{files}/models.py:net", "--data", tmp_path / "cab.csv", "--classes", "no,yes",
                   "--schema", tmp_path / "schema.json", "--out", tmp_path / "r", *FAST)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads((tmp_path / "r" / "report.json").read_text())
    inputs = payload["model"]["inputs"]
    assert inputs["matched"] == "by name" and inputs["reordered"] and inputs["columns"] == ["a", "b", "c"]
    assert inputs["names_from"] == "the saved schema (--schema)"
    assert "came in another order and were put in the model&#39;s order (a, b, c; from the saved schema" \
        in (tmp_path / "r" / "report.html").read_text()
    best = payload["surrogates"][payload["recommended"]]
    assert {c["feature"] for r in best["rules"] for c in r["conditions"]} == {"a"}
    # A column the schema does not name, or one it names that is missing, stops the run.
    abc_table().assign(d=1.5).to_csv(tmp_path / "abcd.csv", index=False)
    line = error_line(explain("--model", f"{files}/models.py:net", "--data", tmp_path / "abcd.csv", "--classes",
                              "no,yes", "--schema", tmp_path / "schema.json", "--out", tmp_path / "r2", *FAST))
    assert "has column ['d'] that the model does not take (its 3 inputs, from the saved schema (--schema): a, b, c)" \
        in line and "'d' looks like the target: name it with --target" in line
    abc_table()[["a", "b"]].to_csv(tmp_path / "ab.csv", index=False)
    line = error_line(explain("--model", f"{files}/models.py:net", "--data", tmp_path / "ab.csv", "--classes",
                              "no,yes", "--schema", tmp_path / "schema.json", "--out", tmp_path / "r2", *FAST))
    assert "the data lacks column ['c'], which the model takes (its 3 inputs, from the saved schema (--schema): " \
           "a, b, c); the data has ['a', 'b']" in line


def test_a_saved_schema_refuses_an_unseen_category(files, tmp_path):
    from pellucid import Schema

    df = make_credit(400, random_state=4)
    Schema.from_frame(df.drop(columns=TARGET)).to_json(tmp_path / "schema.json")
    df["home"] = df["home"].astype(object)
    df.loc[[37, 80], "home"] = "houseboat"
    df.to_csv(tmp_path / "new.csv", index=False)
    line = error_line(explain("--model", f"{files}/models.py:rule", "--data", tmp_path / "new.csv", "--target",
                              TARGET, "--classes", "good,bad", "--schema", tmp_path / "schema.json",
                              "--out", tmp_path / "r", *FAST))
    assert "column 'home' of the data holds category never seen in the reference data: ['houseboat'] " \
           "(2 rows, first at row 37)" in line
    for bad, pattern in [("nope.json", "schema file '.*nope.json' does not exist"),
                         ("credit.csv", "is not JSON"), ("empty.json", "is not a pellucid schema")]:
        (tmp_path / "empty.json").write_text("{}")
        path = files / bad if bad == "credit.csv" else tmp_path / bad
        line = error_line(explain("--model", f"{files}/models.py:rule", "--data", files / "credit.csv",
                                  "--schema", path, "--out", tmp_path / "r", *FAST))
        assert re.search(pattern, line), line


def test_columns_a_named_model_does_not_take(files, tmp_path):
    """The target left in (--target forgotten) and an id column are refused by name, with a hint."""
    df = make_credit(300, random_state=4)
    df.insert(0, "application", [f"A{i:05d}" for i in range(len(df))])
    df.to_csv(tmp_path / "all.csv", index=False)
    line = error_line(explain("--model", f"{files}/models.py:pipe", "--data", tmp_path / "all.csv",
                              "--out", tmp_path / "r", *FAST))
    assert f"has columns ['application', '{TARGET}'] that the model does not take (its 11 inputs, from the " \
           "model's feature_names_in_ (Pipeline): income, debt_ratio" in line
    assert "'application' looks like an id: name it with --id-column" in line
    assert f"'{TARGET}' looks like the target: name it with --target" in line
    # Named, both leave the features: the run goes through, the columns matched by name.
    done = explain("--model", f"{files}/models.py:pipe", "--data", tmp_path / "all.csv", "--target", TARGET,
                   "--id-column", "application", "--out", tmp_path / "r", *FAST)
    assert done.returncode == 0, done.stderr[-3000:]
    inputs = json.loads((tmp_path / "r" / "report.json").read_text())["model"]["inputs"]
    assert inputs["matched"] == "by name" and not inputs["reordered"]


def test_a_named_model_takes_columns_in_another_order_by_name():
    """Python: a scikit-learn pipeline records its inputs; a table in another order is put in
    the model's order (which scikit-learn itself would refuse), and the report says so."""
    import pellucid
    from pellucid.errors import SchemaError

    namespace: dict = {}
    exec(MODELS, namespace)
    model = namespace["pipe"]()
    df = make_credit(300, random_state=4)
    shuffled = df[list(reversed(df.columns))]
    res = pellucid.explain(model, shuffled, target=TARGET, out_dir=None, verbose=0, n=500, sizes=(4,), n_boot=0,
                           local=False, attributions=False, linear_view=False)
    inputs = res.payload["model"]["inputs"]
    assert inputs["reordered"] and inputs["columns"] == [str(c) for c in model.feature_names_in_]
    assert res.schema.names == inputs["columns"]
    with pytest.raises(SchemaError, match=r"\['extra'\] that the model does not take .*'extra' looks like the "
                                          r"target: name it with target="):
        pellucid.explain(model, df.assign(extra=0), target=TARGET, out_dir=None, verbose=0)


# ---------------------------------------------------------------------- determinism (item 4)
def test_a_model_that_answers_differently_stops_the_run(files, tmp_path):
    line = error_line(explain("--model", f"{files}/models.py:noisy", "--data", files / "credit.csv", "--target",
                              TARGET, "--classes", "good,bad", "--out", tmp_path / "r", *FAST))
    found = re.search(r"asked twice about the same rows: (\d+) of 256 rows \((\S+)%\) changed, the largest "
                      r"difference (\S+) \(row (\d+)\);.*pass --allow-nondeterministic", line)
    assert found and int(found.group(1)) > 200 and float(found.group(3)) > 0.01, line
    done = explain("--model", f"{files}/models.py:noisy", "--data", files / "credit.csv", "--target", TARGET,
                   "--classes", "good,bad", "--allow-nondeterministic", "--out", tmp_path / "r", *FAST)
    assert done.returncode == 0, done.stderr[-3000:]
    det = json.loads((tmp_path / "r" / "report.json").read_text())["model"]["determinism"]
    assert det["deterministic"] is False and det["allowed"] is True and det["rows"] == 256
    assert det["changed_rows"] > 200 and 0.01 < det["max_difference"] < 1
    summary = (tmp_path / "r" / "report.html").read_text().split('<section id="summary">')[1].split("</section>")[0]
    assert "Not deterministic." in summary and f"{det['changed_rows']} ({det['share_changed']:.1%})" in summary


class _Noisy(torch.nn.Module):
    """A torch network whose forward adds noise or keeps dropout on: eval mode does not help."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.lin = torch.nn.Linear(3, 2)

    def forward(self, x):
        if self.how == "rand":
            return self.lin(x) + torch.rand(x.shape[0], 2)
        return self.lin(torch.nn.functional.dropout(x, p=0.5, training=True))


@pytest.mark.parametrize("how", ["rand", "dropout"])
def test_nondeterministic_torch_modules(how):
    import pellucid
    from pellucid import Oracle
    from pellucid.errors import ModelOutputError

    torch.manual_seed(0)
    oracle = Oracle(_Noisy(how), classes=["no", "yes"])
    with pytest.raises(ModelOutputError, match=r"asked twice about the same rows: \d+ of 256 rows .* changed.*"
                                               r"allow_nondeterministic=True"):
        pellucid.explain(oracle, abc_table(), out_dir=None, verbose=0)
    assert oracle.n_queries == 2 * 256  # the check's two queries, counted, and nothing after them
    # A deterministic network passes, and the report says what was checked.
    res = pellucid.explain(Oracle(_Noisy("rand").lin, classes=["no", "yes"]), abc_table(), out_dir=None, verbose=0,
                           n=500, sizes=(4,), n_boot=0, local=False, attributions=False, linear_view=False)
    det = res.payload["model"]["determinism"]
    assert det["deterministic"] and det["changed_rows"] == 0 and det["max_difference"] == 0.0
    assert det["queries"] == 512 and res.payload["model"]["n_queries"] >= 512 + res.distillation.n_queries


# ---------------------------------------------------------------------- TorchScript (item 6)
@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """A small network on the a, b, c table, saved as TorchScript, and the table."""
    d = tmp_path_factory.mktemp("script")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit: users still have such files
        torch.jit.script(net).save(str(d / "net.pt"))
    abc_table().to_csv(d / "abc.csv", index=False)
    return d


def test_torchscript_runs_every_default_section(scripted, tmp_path):
    """Gradients and the randomised-network check work on a ScriptModule (it took 43 s to fail
    with 'get_submodule is not supported on ScriptModules')."""
    done = explain("--model", scripted / "net.pt", "--data", scripted / "abc.csv", "--classes", "no,yes",
                   "--out", tmp_path / "r", "--quiet", "--n", 500, "--sizes", 4, "--n-boot", 0, "--no-scorecard",
                   "--explain-rows", 3)
    assert done.returncode == 0, done.stderr[-3000:]
    payload = json.loads((tmp_path / "r" / "report.json").read_text())
    assert payload["model"]["format"] == "torchscript"
    methods = payload["attributions"]["methods"]
    assert [m["name"] for m in methods] == ["saliency", "gradient_x_input", "integrated_gradients", "smoothgrad",
                                            "occlusion", "shapley"]
    for m in methods:
        assert m["evaluation"]["sanity"] is not None and m["evaluation"]["sanity_skipped"] is None
    assert payload["local"]["rows"]


def test_torchscript_refuses_what_needs_hooks_before_any_work(scripted, tmp_path):
    base = ["--model", scripted / "net.pt", "--data", scripted / "abc.csv", "--classes", "no,yes", "--out",
            tmp_path / "r", "--quiet", "--n", 500, "--sizes", 4]
    line = error_line(explain(*base, "--attributions", "saliency,lrp"))
    assert "--attributions ['lrp'] hook the network's layers, which a TorchScript module does not allow" in line
    line = error_line(explain(*base, "--concept", "high a=a > 0.5", "--concept-layer", "0"))
    assert "concept tests (TCAV) hook the layer named by concept_layer, which a TorchScript module does not " \
           "allow" in line
    assert not (tmp_path / "r").exists()
    import pellucid
    from pellucid import Oracle
    from pellucid.errors import ParameterError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        oracle = Oracle(torch.jit.load(str(scripted / "net.pt")), classes=["no", "yes"])
    for method in ("lrp", "grad_cam"):
        with pytest.raises(ParameterError, match=rf"attributions= \['{method}'\] hook the network's layers"):
            pellucid.explain(oracle, abc_table(), attributions=[method], out_dir=None, verbose=0)
    assert oracle.n_queries == 0
    with pytest.raises(ParameterError, match="LRP hooks the network's layers, which a TorchScript module does not"):
        pellucid.attribution.lrp(oracle, abc_table().head(5))
