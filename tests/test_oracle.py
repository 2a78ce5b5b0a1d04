"""Tests of pellucid.oracle: every answer is checked against the model called directly."""

from __future__ import annotations

import hashlib
import json
import sys
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.compose import ColumnTransformer
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, Ridge, RidgeClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pellucid.errors import (
    ModelError,
    ModelLoadError,
    ModelOutputError,
    ParameterError,
    PellucidError,
    PellucidWarning,
)
from pellucid.oracle import EncodingMap, Oracle, load_model

from .conftest import N_ORACLE_ROWS as N  # rows of the `frame` fixture

# ---------------------------------------------------------------------- fixtures
# `frame` (50 raw rows, two categorical and two numeric columns) and `ct` (a fitted
# ColumnTransformer for it) come from conftest.py.


def _mlp(n_in: int, n_out: int, *tail: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(n_in, 16), torch.nn.ReLU(), torch.nn.Linear(16, n_out), *tail)


@pytest.fixture
def net(ct, frame) -> torch.nn.Module:
    return _mlp(ct.transform(frame).shape[1], 3)


def _direct(net, ct, frame) -> np.ndarray:
    """The network called by hand on the encoded rows."""
    with torch.no_grad():
        return net(torch.tensor(ct.transform(frame), dtype=torch.float32)).double().numpy()


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------- torch
def test_torch_query_matches_softmax_of_net(net, ct, frame):
    oracle = Oracle(net, ct)
    proba = oracle.query(frame)
    assert proba.dtype == np.float64 and proba.shape == (N, 3)
    np.testing.assert_allclose(proba, _softmax(_direct(net, ct, frame)), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert oracle.task == "classification" and oracle.kind == "torch"
    assert list(oracle.classes_) == [0, 1, 2] and oracle.n_outputs == 3
    assert (oracle.n_queries, oracle.n_calls) == (N, 1)
    oracle.query(frame.iloc[:10])
    assert (oracle.n_queries, oracle.n_calls) == (N + 10, 2)
    oracle.reset_counter()
    assert (oracle.n_queries, oracle.n_calls) == (0, 0)
    np.testing.assert_array_equal(oracle.predict(frame), _direct(net, ct, frame).argmax(axis=1))


def test_batches_give_the_same_answer(net, ct, frame):
    whole = Oracle(net, ct).query(frame)
    oracle = Oracle(net, ct, batch_size=7)
    np.testing.assert_allclose(oracle.query(frame), whole, rtol=0, atol=1e-7)
    assert oracle.n_calls == -(-N // 7) and oracle.n_queries == N


def test_query_uses_eval_mode_and_restores_train_mode(ct, frame):
    width = ct.transform(frame).shape[1]
    net = _mlp(width, 2)
    net[1] = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Dropout(0.5))
    net.train()
    net[0].eval()  # a submodule with its own mode must keep it
    answer = Oracle(net, ct).query(frame)
    assert net.training and net[1][1].training and not net[0].training
    net.eval()
    np.testing.assert_allclose(answer, _softmax(_direct(net, ct, frame)), rtol=1e-5, atol=1e-6)


def test_forward_is_differentiable_and_matches_query(net, ct, frame):
    oracle = Oracle(net, ct)
    x = torch.tensor(oracle.encode(frame), requires_grad=True)
    assert x.dtype == torch.float32 and tuple(x.shape) == ct.transform(frame).shape
    out = oracle.forward(x)
    assert out.shape == (N, 3)
    out[:, 1].sum().backward()
    assert x.grad is not None and torch.count_nonzero(x.grad) > 0
    np.testing.assert_allclose(out.detach().numpy(), oracle.query(frame), rtol=1e-5, atol=1e-6)


def test_forward_needs_torch(frame):
    oracle = Oracle(lambda f: np.zeros(len(f)))
    with pytest.raises(ModelError, match="torch"):
        oracle.forward(torch.zeros(3, 2))


def test_output_auto_detects_probabilities_and_logits(ct, frame):
    width = ct.transform(frame).shape[1]
    soft = _mlp(width, 3, torch.nn.Softmax(dim=1))
    oracle = Oracle(soft, ct)
    np.testing.assert_allclose(oracle.query(frame), _direct(soft, ct, frame), rtol=1e-6, atol=1e-7)
    assert oracle.output_ == "proba" and oracle.describe()["output"] == "proba"
    logits = _mlp(width, 3, seed=1)
    oracle = Oracle(logits, ct)
    oracle.query(frame)
    assert oracle.output_ == "logits"
    # The network's logits are not probabilities: insisting that they are must fail loudly.
    with pytest.raises(ModelOutputError, match="proba"):
        Oracle(logits, ct, output="proba").query(frame)


def test_one_output_sigmoid_is_binary_classification(ct, frame):
    width = ct.transform(frame).shape[1]
    net = _mlp(width, 1, torch.nn.Sigmoid())
    oracle = Oracle(net, ct, task="classification")
    proba = oracle.query(frame)
    p = _direct(net, ct, frame)[:, 0]
    assert proba.shape == (N, 2) and oracle.output_ == "proba"
    np.testing.assert_allclose(proba[:, 1], p, rtol=1e-6)
    np.testing.assert_allclose(proba[:, 0], 1 - p, rtol=1e-6)
    assert list(oracle.classes_) == [0, 1]
    out = oracle.forward(torch.tensor(oracle.encode(frame)))
    np.testing.assert_allclose(out.detach().numpy(), proba, rtol=1e-6, atol=1e-7)


def test_one_output_logit_binary_with_classes(ct, frame):
    width = ct.transform(frame).shape[1]
    net = _mlp(width, 1)
    oracle = Oracle(net, ct, task="classification", classes=["no", "yes"])
    proba = oracle.query(frame)
    expected = 1 / (1 + np.exp(-_direct(net, ct, frame)[:, 0]))
    np.testing.assert_allclose(proba[:, 1], expected, rtol=1e-6)
    assert oracle.output_ == "logits"
    assert set(oracle.predict(frame)) <= {"no", "yes"}
    out = oracle.forward(torch.tensor(oracle.encode(frame)))
    np.testing.assert_allclose(out.detach().numpy(), proba, rtol=1e-6, atol=1e-7)


def test_one_output_regression(ct, frame):
    width = ct.transform(frame).shape[1]
    net = _mlp(width, 1)
    oracle = Oracle(net, ct)
    values = oracle.query(frame)
    assert oracle.task == "regression" and values.shape == (N,)
    np.testing.assert_allclose(values, _direct(net, ct, frame)[:, 0], rtol=1e-6)
    np.testing.assert_allclose(oracle.predict(frame), values)
    with pytest.raises(ParameterError, match="classification"):
        oracle.predict_proba(frame)
    x = torch.tensor(oracle.encode(frame))
    assert oracle.forward(x).shape == (N,)


def test_numeric_frame_without_preprocess_and_double_module():
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(20, 4)), columns=list("abcd"))
    net = _mlp(4, 2).double()
    oracle = Oracle(net)
    with torch.no_grad():
        expected = _softmax(net(torch.tensor(frame.to_numpy())).numpy())
    np.testing.assert_allclose(oracle.query(frame), expected, rtol=1e-6)
    np.testing.assert_allclose(oracle.query(frame.to_numpy()), expected, rtol=1e-6)
    emap = oracle.encoding_map(frame)
    assert emap.method == "identity" and emap.groups == {"a": (0,), "b": (1,), "c": (2,), "d": (3,)}
    assert emap.n_encoded == 4 and emap.shared == ()


def test_task_unknown_before_first_query(net, ct):
    oracle = Oracle(net, ct)
    with pytest.raises(PellucidError, match="task="):
        oracle.task
    assert Oracle(net, ct, task="classification").task == "classification"


def test_unavailable_device_falls_back_to_cpu(net, ct, frame):
    # One past the last GPU: unavailable on every machine, with or without GPUs.
    missing = f"cuda:{torch.cuda.device_count()}"
    with pytest.warns(PellucidWarning, match="cuda"):
        oracle = Oracle(net, ct, device=missing)
    assert oracle.device.type == "cpu"
    np.testing.assert_allclose(oracle.query(frame), _softmax(_direct(net, ct, frame)), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------- scikit-learn
def test_sklearn_pipeline_classifier(frame, ct):
    target = np.where(frame["x"] + (frame["size"] == "L") > 0.3, "good", "bad")
    pipe = make_pipeline(ct, LogisticRegression()).fit(frame, target)
    oracle = Oracle(pipe)
    assert oracle.kind == "sklearn" and oracle.task == "classification"
    np.testing.assert_allclose(oracle.query(frame), pipe.predict_proba(frame), rtol=1e-12)
    np.testing.assert_array_equal(oracle.classes_, pipe.classes_)
    np.testing.assert_array_equal(oracle.predict(frame), pipe.predict(frame))
    empty = oracle.query(frame.iloc[:0])
    assert empty.shape == (0, 2) and oracle.n_calls == 2


def test_sklearn_with_separate_preprocess(frame, ct):
    target = (frame["y"] > 2).astype(int)
    model = LogisticRegression().fit(ct.transform(frame), target)
    oracle = Oracle(model, ct)
    np.testing.assert_allclose(oracle.predict_proba(frame), model.predict_proba(ct.transform(frame)))


def test_sklearn_regressor(frame, ct):
    target = 2 * frame["x"] - frame["y"]
    pipe = make_pipeline(ct, Ridge()).fit(frame, target)
    oracle = Oracle(pipe)
    assert oracle.task == "regression" and oracle.n_outputs == 1
    np.testing.assert_allclose(oracle.query(frame), pipe.predict(frame))
    with pytest.raises(ParameterError):
        oracle.predict_proba(frame)


def test_sklearn_predict_only_classifier_gives_one_hot(frame, ct):
    target = np.where(frame["x"] > 0, "hi", np.where(frame["y"] > 2, "mid", "lo"))
    pipe = make_pipeline(ct, RidgeClassifier()).fit(frame, target)
    assert not hasattr(pipe, "predict_proba")
    oracle = Oracle(pipe)
    proba = oracle.query(frame)
    assert oracle.output_ == "labels"
    np.testing.assert_array_equal(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(oracle.classes_[proba.argmax(axis=1)], pipe.predict(frame))


def test_unfitted_sklearn_is_refused(ct):
    with pytest.raises(ModelError, match="not fitted"):
        Oracle(LogisticRegression())
    with pytest.raises(ParameterError, match="not fitted"):
        Oracle(lambda f: f, StandardScaler())


# ---------------------------------------------------------------------- callables
def test_callable_returning_probabilities(frame):
    def model(rows: pd.DataFrame) -> np.ndarray:
        p = 1 / (1 + np.exp(-rows["x"].to_numpy()))
        return np.column_stack([1 - p, p])

    oracle = Oracle(model, classes=["no", "yes"])
    np.testing.assert_allclose(oracle.query(frame), model(frame))
    assert oracle.kind == "callable" and oracle.output_ == "proba" and oracle.task == "classification"
    np.testing.assert_array_equal(oracle.predict(frame), np.where(frame["x"] > 0, "yes", "no"))


def test_callable_returning_labels(frame):
    def model(rows):
        return np.where(rows["x"] > 0, "pos", "neg")

    oracle = Oracle(model, classes=["neg", "pos", "zero"])
    proba = oracle.query(frame)
    assert proba.shape == (N, 3) and oracle.task == "classification"
    np.testing.assert_array_equal(proba[:, 1], (frame["x"] > 0).astype(float))
    np.testing.assert_array_equal(proba[:, 2], 0.0)
    np.testing.assert_array_equal(oracle.predict(frame), model(frame))
    with pytest.raises(ModelOutputError, match="not in classes"):
        Oracle(model, classes=["neg", "other"]).query(frame)
    with pytest.warns(PellucidWarning, match="classes"):
        inferred = Oracle(model)
        inferred.query(frame)
    assert list(inferred.classes_) == ["neg", "pos"]


def test_callable_with_preprocess(frame, ct):
    seen = []

    def model(z):
        seen.append(z)
        return z[:, -1]

    oracle = Oracle(model, ct)
    np.testing.assert_allclose(oracle.query(frame), ct.transform(frame)[:, -1])
    assert oracle.task == "regression" and isinstance(seen[0], np.ndarray)


# ---------------------------------------------------------------------- errors
def test_not_a_model():
    with pytest.raises(ModelError, match="got int"):
        Oracle(42)
    with pytest.raises(ModelError, match="LogisticRegression"):
        Oracle(LogisticRegression)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"task": "clasification"}, "task"), ({"output": "probs"}, "output"),
     ({"batch_size": 0}, "batch_size"), ({"batch_size": 2.5}, "batch_size")],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ParameterError, match=match):
        Oracle(lambda f: np.zeros(len(f)), **kwargs)
    with pytest.raises(ParameterError, match="preprocess"):
        Oracle(lambda f: np.zeros(len(f)), preprocess=3)


def test_wrong_row_count(frame):
    oracle = Oracle(lambda rows: np.zeros((len(rows) - 1, 2)) + 0.5)
    with pytest.raises(ModelOutputError, match=r"49 rows.*\(49, 2\).*50 input rows"):
        oracle.query(frame)


def test_non_finite_and_bad_shapes(frame):
    def nan_model(rows):
        out = np.full((len(rows), 2), 0.5)
        out[3, 1] = np.nan
        return out

    with pytest.raises(ModelOutputError, match="NaN"):
        Oracle(nan_model).query(frame)
    with pytest.raises(ModelOutputError, match="shape"):
        Oracle(lambda rows: np.zeros((len(rows), 2, 2))).query(frame)
    changing = Oracle(lambda rows: np.full((len(rows), 2 + (len(rows) % 2)), 0.2))
    changing.query(frame.iloc[:4])
    with pytest.raises(ModelOutputError, match="changed shape"):
        changing.query(frame.iloc[:5])
    with pytest.raises(ModelOutputError, match="sums to"):
        Oracle(lambda rows: np.full((len(rows), 3), 0.5), output="proba").query(frame)


def test_errors_inside_the_model_are_wrapped_and_chained(frame, ct):
    original = KeyError("no such column 'q'")

    def broken(rows):
        raise original

    with pytest.raises(ModelError, match=f"KeyError.*{N} rows") as info:
        Oracle(broken).query(frame)
    assert info.value.__cause__ is original
    net = _mlp(3, 2)  # expects 3 inputs, gets 9
    with pytest.raises(ModelError, match="RuntimeError") as info:
        Oracle(net, ct).query(frame)
    assert isinstance(info.value.__cause__, RuntimeError)

    def bad_preprocess(rows):
        raise ValueError("cannot encode")

    with pytest.raises(ModelError, match="preprocess raised ValueError") as info:
        Oracle(net, bad_preprocess).query(frame)
    assert isinstance(info.value.__cause__, ValueError)


def test_classes_must_match_output_width(net, ct, frame):
    with pytest.raises(ModelOutputError, match="classes"):
        Oracle(net, ct, classes=["a", "b"]).query(frame)


# ---------------------------------------------------------------------- encoding map
def test_encoding_map_structure_matches_probe_and_feature_names(net, ct, frame):
    structure = Oracle(net, ct).encoding_map(frame)
    probe = Oracle(net, ct.transform).encoding_map(frame)  # a bound method: only probing can tell
    assert structure.method == "structure" and probe.method == "probe"
    assert structure.groups == probe.groups
    assert structure.shared == probe.shared == ()
    names = ct.get_feature_names_out()
    assert structure.n_encoded == len(names) == probe.n_encoded
    for feature, prefix in [("color", "cat__color_"), ("size", "cat__size_"), ("x", "num__x"), ("y", "num__y")]:
        expected = tuple(i for i, name in enumerate(names) if name.startswith(prefix))
        assert structure.groups[feature] == expected
    assert structure.raw_features == ("color", "size", "x", "y")
    assert json.loads(json.dumps(structure.to_dict()))["groups"]["x"] == list(structure.groups["x"])


def test_encoding_map_dropped_column_and_probed_block(frame):
    frame = frame.assign(row_id=np.arange(N))
    ct = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["size"]), ("pca", PCA(2), ["x", "y"])],
        remainder="drop",
    ).fit(frame)
    oracle = Oracle(lambda z: z[:, 0], ct)
    with pytest.warns(PellucidWarning, match="several raw features"):
        emap = oracle.encoding_map(frame)
    n_size = len(ct.named_transformers_["cat"].categories_[0])
    assert emap.method == "structure"
    assert emap.groups["size"] == tuple(range(n_size))
    assert emap.groups["x"] == emap.groups["y"] == () and emap.groups["color"] == emap.groups["row_id"] == ()
    assert emap.shared == (n_size, n_size + 1)


def test_encoding_map_probe_finds_interaction(frame):
    def encode(rows):
        x, y = rows["x"].to_numpy(), rows["y"].to_numpy()
        return np.column_stack([x, y, x * y, (rows["size"] == "L").to_numpy()])

    oracle = Oracle(lambda z: z[:, 0], encode)
    with pytest.warns(PellucidWarning, match=r"2 \(from x, y\)"):
        emap = oracle.encoding_map(frame)
    assert emap.method == "probe" and emap.n_encoded == 4
    assert emap.groups == {"color": (), "size": (3,), "x": (0,), "y": (1,)}
    assert emap.shared == (2,)


def test_probed_block_takes_few_calls_and_maps_as_one_feature_at_a_time(frame, monkeypatch):
    from sklearn.impute import SimpleImputer

    from pellucid.oracle import encoding

    frame = frame.assign(x=frame["x"].mask(frame.index % 7 == 0), y=frame["y"].mask(frame.index % 5 == 0))
    # The imputer's missing-value indicators make the numeric block one to probe.
    ct = ColumnTransformer([("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["size"]),
                            ("num", SimpleImputer(add_indicator=True), ["x", "y"])]).fit(frame)
    calls = []
    transform = ct.transform
    monkeypatch.setattr(ct, "transform", lambda rows: calls.append(len(rows)) or transform(rows))
    together = Oracle(lambda z: z[:, 0], ct).encoding_map(frame)
    # Two rows for the width, the sample, then both shifted features in one call.
    assert calls == [2, N, 2 * N]
    monkeypatch.setattr(encoding, "_encode_together", lambda *args: None)
    one_by_one = Oracle(lambda z: z[:, 0], ct).encoding_map(frame)
    assert together == one_by_one and together.method == "structure"
    assert together.groups["x"] == (3, 5) and together.groups["y"] == (4, 6)


def test_encoding_is_kept_for_the_same_table_and_preprocess_only(net, ct, frame, monkeypatch):
    from pellucid.oracle import core

    core._ENCODED.clear()
    calls = []
    transform = type(ct).transform
    monkeypatch.setattr(type(ct), "transform", lambda self, rows: calls.append(len(rows)) or transform(self, rows))
    oracle = Oracle(net, ct)
    first = oracle.encode(frame)
    first[:] = 0  # the caller's copy: what is kept does not change
    again = Oracle(net, ct).encode(frame.copy())  # another oracle, the same preprocess and rows
    assert calls == [N]
    np.testing.assert_array_equal(again, transform(ct, frame).astype(np.float32))
    changed = frame.copy()
    changed.loc[3, "x"] += 1.0
    assert not np.array_equal(oracle.encode(changed), again) and calls == [N, N]
    ct.fit(frame.assign(x=frame["x"] * 10))  # fitted again in place: a new answer, never the old one
    refit = oracle.encode(frame)
    assert calls == [N, N, N] and not np.array_equal(refit, again)
    np.testing.assert_array_equal(oracle.encode(frame), refit)
    assert calls == [N, N, N]
    core._ENCODED.clear()


def test_probe_changes_constant_and_repeated_columns():
    frame = pd.DataFrame({"a": [1.0] * 6, "b": ["u", "u", "v", "v", "u", "v"]})

    def encode(rows):
        return np.column_stack([rows["a"].fillna(-1).to_numpy(), (rows["b"] == "v").to_numpy()])

    emap = Oracle(lambda z: z[:, 0], encode).encoding_map(frame)
    assert emap.groups == {"a": (0,), "b": (1,)}


# ---------------------------------------------------------------------- loading
MODEL_DEF = """
import torch
from helper_layers import WIDTH  # a neighbour module: the file's folder must be importable

def build():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(WIDTH, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))

NET = build()

def with_preprocess():
    return NET, lambda rows: rows[["x", "y"]].to_numpy()

def callable_model(rows):
    return rows["x"].to_numpy()
"""


@pytest.fixture
def model_def(tmp_path):
    (tmp_path / "helper_layers.py").write_text("WIDTH = 2\n")
    path = tmp_path / "model_def.py"
    path.write_text(MODEL_DEF)
    return path


def test_load_file_factory_and_object(model_def, frame):
    built = load_model(f"{model_def}:build")
    obj = load_model(f"{model_def}:NET")
    assert isinstance(built, torch.nn.Sequential) and isinstance(obj, torch.nn.Sequential)
    assert str(model_def.parent) not in sys.path
    x = torch.tensor(frame[["x", "y"]].to_numpy(), dtype=torch.float32)
    with torch.no_grad():
        np.testing.assert_allclose(built(x).numpy(), obj(x).numpy())  # same seed in both
    assert callable(load_model(f"{model_def}:callable_model"))  # needs an argument: not a factory

    oracle = Oracle.from_spec(f"{model_def}:with_preprocess")
    assert oracle.preprocess is not None
    with torch.no_grad():
        np.testing.assert_allclose(oracle.query(frame), _softmax(obj(x).double().numpy()), rtol=1e-5)
    assert oracle.source == f"{model_def}:with_preprocess"
    assert oracle.sha256 == hashlib.sha256(model_def.read_bytes()).hexdigest()
    assert json.loads(json.dumps(oracle.describe()))["sha256"] == oracle.sha256


def test_load_module_attr(tmp_path, monkeypatch, frame):
    (tmp_path / "pellucid_test_zoo_oracle.py").write_text(
        "import numpy as np\n"
        "def model(rows):\n    return rows['x'].to_numpy() * 2\n"
        "def factory():\n    return model\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_model("pellucid_test_zoo_oracle:factory").__name__ == "model"
    oracle = Oracle.from_spec("pellucid_test_zoo_oracle:model")
    np.testing.assert_allclose(oracle.query(frame), 2 * frame["x"].to_numpy())
    assert oracle.sha256 is None and oracle.source == "pellucid_test_zoo_oracle:model"
    with pytest.raises(ModelLoadError, match="no_such_module_xyz"):
        load_model("no_such_module_xyz:model")


def test_torchscript_round_trip(tmp_path, net, ct, frame):
    path = tmp_path / "net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), str(path))
        loaded = load_model(str(path))
    assert isinstance(loaded, torch.jit.ScriptModule)
    loaded.train()
    oracle = Oracle.from_spec(str(path), preprocess=ct)
    np.testing.assert_allclose(oracle.query(frame), _softmax(_direct(net, ct, frame)), rtol=1e-5, atol=1e-6)
    assert oracle.describe()["model_class"] == "Sequential"
    assert oracle.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_torch_export_round_trip(tmp_path, net, ct, frame):
    example = torch.tensor(ct.transform(frame[:8]), dtype=torch.float32)
    program = torch.export.export(net, (example,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))
    oracle = Oracle(load_model(str(path)), ct, batch_size=16)
    np.testing.assert_allclose(oracle.query(frame), _softmax(_direct(net, ct, frame)), rtol=1e-5, atol=1e-6)


def test_state_dict_is_refused(tmp_path, net):
    path = tmp_path / "weights.pth"
    torch.save(net.state_dict(), path)
    with pytest.raises(ModelLoadError, match=r"state dict.*file\.py:attr"):
        load_model(str(path))


def test_joblib_round_trip(tmp_path, frame, ct):
    target = (frame["x"] > 0).astype(int)
    pipe = make_pipeline(ct, LogisticRegression()).fit(frame, target)
    path = tmp_path / "pipe.joblib"
    joblib.dump(pipe, path)
    oracle = Oracle.from_spec(str(path))
    np.testing.assert_allclose(oracle.query(frame), pipe.predict_proba(frame))
    assert oracle.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_load_errors_name_the_culprit(tmp_path, model_def):
    with pytest.raises(ModelLoadError, match="missing_model.pt"):
        load_model(str(tmp_path / "missing_model.pt"))
    with pytest.raises(ModelLoadError, match="nowhere.py"):
        load_model(f"{tmp_path / 'nowhere.py'}:net")
    with pytest.raises(ModelLoadError, match="no attribute 'nope'"):
        load_model(f"{model_def}:nope")
    with pytest.raises(ModelLoadError, match="model.onnx"):
        load_model(str(tmp_path / "model.onnx"))
    broken = tmp_path / "broken_def.py"
    broken.write_text("import no_such_package_for_pellucid\n")
    with pytest.raises(ModelLoadError, match="broken_def.py.*ModuleNotFoundError") as info:
        load_model(f"{broken}:net")
    assert isinstance(info.value.__cause__, ModuleNotFoundError)


def test_describe_is_json(net, ct, frame):
    oracle = Oracle(net, ct)
    oracle.query(frame)
    info = json.loads(json.dumps(oracle.describe()))
    assert info["kind"] == "torch" and info["model_class"] == "Sequential"
    assert info["n_parameters"] == sum(p.numel() for p in net.parameters())
    assert info["classes"] == ["0", "1", "2"] and info["n_queries"] == N
    assert info["preprocess"] == "ColumnTransformer" and info["versions"]["torch"] == torch.__version__
    assert isinstance(EncodingMap(("a",), {"a": (0,)}, (), 1, "identity").to_dict(), dict)


def test_long_queries_show_progress_on_a_terminal_only(monkeypatch, capsys):
    X = pd.DataFrame({"a": np.arange(5000.0)})
    model = lambda df: np.column_stack([df["a"].to_numpy() * 0 + 0.5] * 2)  # noqa: E731
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    Oracle(model, task="classification", batch_size=1000).query(X)
    assert "querying the model" in capsys.readouterr().err
    Oracle(model, task="classification", batch_size=1000, verbose=0).query(X)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    Oracle(model, task="classification", batch_size=1000).query(X)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------- review fixes
def _one_logit_net(bias: float) -> torch.nn.Module:
    net = torch.nn.Linear(2, 1)
    with torch.no_grad():
        net.weight.fill_(0.1)
        net.bias.fill_(bias)
    return net


def test_one_output_in_unit_range_is_not_guessed():
    X = np.full((4, 2), 0.5, dtype=np.float32)  # logits 0.1 + 0.3: inside [0, 1]
    with pytest.raises(ParameterError, match="output='proba' or output='logits'"):
        Oracle(_one_logit_net(0.3), task="classification").query(X)
    p = Oracle(_one_logit_net(0.3), task="classification", output="logits").query(X)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-0.4)), rtol=1e-6)
    # A network that ends in a sigmoid says what its output is.
    sig = torch.nn.Sequential(_one_logit_net(0.3), torch.nn.Sigmoid())
    p = Oracle(sig, task="classification").query(X)
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-0.4)), rtol=1e-6)


def test_classes_without_task_mean_classification():
    X = np.zeros((3, 2), dtype=np.float32)
    o = Oracle(_one_logit_net(2.0), classes=["no", "yes"])
    assert o.query(X).shape == (3, 2) and o.task == "classification"
    assert list(o.predict(X)) == ["yes"] * 3
    with pytest.raises(ParameterError, match="distinct"):
        Oracle(_one_logit_net(2.0), classes=["a", "a"])


def test_double_precision_module_gets_double_input():
    net = torch.nn.Linear(1, 1).double()
    with torch.no_grad():
        net.weight.fill_(1.0)
        net.bias.fill_(0.0)
    X = np.array([[123456.789], [0.1]])
    out = Oracle(net, task="regression").query(X)
    np.testing.assert_array_equal(out, X[:, 0])  # float32 would round 123456.789


def test_probe_finds_the_column_of_a_rare_category(frame):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"c": rng.choice(["a", "b", "c"], 1000).astype(object), "x": rng.normal(size=1000)})
    df.loc[777, "c"] = "rare"
    cats = ["a", "b", "c", "rare"]

    def pre(d):  # a callable: probed, not read off a structure
        return np.column_stack([(d["c"] == k).to_numpy(float) for k in cats] + [d["x"].to_numpy()])

    o = Oracle(lambda d: np.zeros(len(d)), preprocess=pre, task="regression")
    m = o.encoding_map(df)
    assert m.method == "probe" and m.groups["c"] == (0, 1, 2, 3) and m.groups["x"] == (4,)


def test_orphan_encoded_columns_are_reported(frame):
    def pre(d):
        return np.column_stack([d["x"].to_numpy(), np.ones(len(d))])  # column 1 depends on nothing

    o = Oracle(lambda d: np.zeros(len(d)), preprocess=pre, task="regression")
    with pytest.warns(PellucidWarning, match=r"encoded columns \[1\]"):
        o.encoding_map(frame)


def test_encode_gives_writable_arrays_and_forward_has_gradients_under_no_grad(frame, ct):
    net = torch.nn.Sequential(torch.nn.Linear(ct.transform(frame).shape[1], 2))
    o = Oracle(net, preprocess=ct)
    Z = o.encode(frame)
    assert Z.flags.writeable
    x = torch.from_numpy(Z).requires_grad_()
    with torch.no_grad():
        out = o.forward(x)
    out[:, 1].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_forward_checks_regression_width():
    net = torch.nn.Linear(2, 2)
    o = Oracle(net, task="regression")
    with pytest.raises(ModelOutputError, match="one value per row"):
        o.forward(torch.zeros(3, 2))


def test_device_must_be_where_the_module_is():
    with pytest.raises(ParameterError, match="move the module"):
        Oracle(torch.nn.Linear(2, 2), device="meta")


def test_non_finite_input_is_named_as_such():
    net = torch.nn.Linear(2, 2)
    X = np.array([[0.0, np.nan], [1.0, 2.0]], dtype=np.float32)
    with pytest.raises(ModelOutputError, match=r"input holds NaN.*columns \[1\]"):
        Oracle(net, task="classification").query(X)


# ---------------------------------------------------------------------- batch sizes by device
def test_torch_batches_fit_the_cache_and_blocks_hold_whole_batches():
    from pellucid import _device

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)).eval()
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(30_000, 5)), columns=list("abcde"))
    o = Oracle(net, task="classification", verbose=0)
    got = o.query(X)
    assert o.batch_size_ == _device.CPU_ROWS
    assert o.chunk_rows_ % o.batch_size_ == 0 and o.chunk_rows_ >= o.batch_size_
    # First block of 1024 rows in one call, then calls of batch_size_ rows.
    assert o.n_calls == 1 + -(-(30_000 - 1024) // o.batch_size_)
    with torch.no_grad():
        want = torch.softmax(net(torch.tensor(X.to_numpy(), dtype=torch.float32)), 1).double().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    # Wide rows: fewer rows a call, never more than CPU_BYTES of input.
    assert _device.cpu_query_rows(4 * 3 * 224 * 224) == _device.CPU_BYTES // (4 * 3 * 224 * 224)
    assert _device.cpu_query_rows(4) == _device.CPU_ROWS and _device.cpu_query_rows(10**12) == 1


def test_gpu_batch_comes_from_free_memory_and_the_first_batch(monkeypatch):
    """The GPU branch's arithmetic, on a CPU module with the device functions faked: the batch
    is half the free memory over what the first batch took a row."""
    from pellucid import _device

    net = torch.nn.Sequential(torch.nn.Linear(5, 2)).eval()
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(5000, 5)), columns=list("abcde"))
    seen = {}

    def fake_peak(device, run):
        seen["called"] = True
        return run(), 1024 * 1000  # 1000 bytes a row over the first 1024 rows

    monkeypatch.setattr(_device, "is_gpu", lambda device: True)
    monkeypatch.setattr(_device, "measure_peak", fake_peak)
    monkeypatch.setattr(_device, "free_bytes", lambda device: 8_000_000)
    o = Oracle(net, task="classification", verbose=0)
    got = o.query(X)
    assert seen and o.batch_size_ == 4000  # 0.5 * 8e6 / 1000
    assert _device.gpu_rows(10**12, 1.0) == _device.GPU_MAX_ROWS and _device.gpu_rows(10, 1e9, low=7) == 7
    with torch.no_grad():
        want = torch.softmax(net(torch.tensor(X.to_numpy(), dtype=torch.float32)), 1).double().numpy()
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-6)
    monkeypatch.setattr(_device, "free_bytes", lambda device: 2**34)  # 16 GiB free: 2**27 elements
    assert _device.max_elements(torch.device("cpu")) == 2**34 * _device.GPU_SHARE // _device.GPU_BYTES_PER_ELEMENT


def test_logits_become_probabilities_as_scipy_computes_them():
    from scipy.special import softmax

    rng = np.random.default_rng(3)
    # More rows than one softmax block, logits far beyond exp's range, and three classes.
    logits = rng.normal(0, 400, size=(70_000, 3))
    oracle = Oracle(lambda X: logits[np.asarray(X)[:, 0].astype(int)], output="logits", task="classification")
    p = oracle.query(np.arange(len(logits))[:, None])
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p, softmax(logits, axis=1), rtol=1e-12, atol=1e-300)


# ---------------------------------------------------------------------- probabilities
def _named(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with rows named as a user's id column names them."""
    return frame.set_axis([f"app-{i}" for i in range(len(frame))])


def test_declared_probabilities_must_be_probabilities(frame):
    """output='proba' is a promise: the first row that is no probability is named, with its
    values, never read as logits."""
    def negative(rows):
        p = np.column_stack([np.full(len(rows), 0.3), np.full(len(rows), 0.7)])
        p[7:] = [1.2, -0.2]  # sums to one, yet no probability
        return p

    with pytest.raises(ModelOutputError, match=r"read as probabilities \(output='proba' was given\), but its answer "
                                               r"for row 'app-7' is \[1.2, -0.2\], which holds a negative value; "
                                               r"43 of 50 rows"):
        Oracle(negative, output="proba").query(_named(frame))

    def short(rows):
        p = np.full((len(rows), 2), 0.5)
        p[11] = [0.5, 0.25]
        return p

    with pytest.raises(ModelOutputError, match=r"for row 11 of the rows queried is \[0.5, 0.25\], which sums to 0.75"):
        Oracle(short, output="proba").query(frame)


def test_predict_proba_must_give_probabilities(frame):
    class Odd:
        classes_ = np.array(["no", "yes"])

        def predict_proba(self, rows):
            return np.column_stack([np.full(len(rows), 0.6), np.full(len(rows), 0.6)])

    with pytest.raises(ModelOutputError, match=r"\(the estimator's predict_proba gives them\).*row 'app-0' is "
                                               r"\[0.6, 0.6\], which sums to 1.2, not 1.*predict_proba must give"):
        Oracle(Odd()).query(_named(frame))


def test_networks_ending_in_softmax_or_sigmoid_give_probabilities(ct, frame):
    width = ct.transform(frame).shape[1]
    soft = Oracle(_mlp(width, 3, torch.nn.Softmax(dim=1)), ct)
    soft.query(frame)
    assert soft.output_ == "proba" and soft.proba_reason_ == "the network ends in Softmax"
    # Two sigmoid columns (several labels at once) are no distribution over classes.
    two = Oracle(_mlp(width, 2, torch.nn.Sigmoid()), ct)
    with pytest.raises(ModelOutputError, match=r"\(the network ends in Sigmoid\), but its answer for row 0 of the "
                                               r"rows queried is \[.*\], which sums to"):
        two.query(frame)
    # Said otherwise, the user wins.
    assert Oracle(_mlp(width, 2, torch.nn.Sigmoid()), ct, output="logits").query(frame).shape == (N, 2)


def test_a_mix_of_probabilities_and_logits_is_an_error(frame):
    """The auto rule reads the first answer row by row: all distributions, probabilities; none,
    logits; some of each, an error naming one of each, never one reading silently."""
    def mixed(rows):
        out = np.column_stack([np.full(len(rows), 0.25), np.full(len(rows), 0.75)])
        out[5:] = [2.0, -1.0]
        return out

    with pytest.raises(ModelOutputError, match=r"answer for row 'app-0' \[0.25, 0.75\] is a probability distribution "
                                               r"\(in \[0, 1\], summing to 1\) but its answer for row 'app-5' "
                                               r"\[2, -1\] is not \(45 of 50 rows are not\)"):
        Oracle(mixed).query(_named(frame))
    assert Oracle(mixed, output="logits").query(frame).shape == (N, 2)
    every = Oracle(lambda rows: np.tile([0.25, 0.75], (len(rows), 1)))
    every.query(frame)
    assert every.output_ == "proba" and "every row in [0, 1], summing to 1" in every.proba_reason_
    none = Oracle(lambda rows: np.tile([2.0, -1.0], (len(rows), 1)))
    none.query(frame)
    assert none.output_ == "logits" and none.proba_reason_ is None


# ---------------------------------------------------------------------- public accessors and adapters
def test_public_accessors_follow_the_first_answer():
    net = _mlp(3, 2).double()
    oracle = Oracle(net, verbose=0)
    assert oracle.tensor_dtype == torch.float64 and oracle.adapter.format == "eager"
    assert oracle.resolved_task is None and oracle.resolved_classes is None and not oracle.is_resolved
    oracle.query(np.zeros((4, 3)))
    assert oracle.resolved_task == "classification" and list(oracle.resolved_classes) == [0, 1]
    assert oracle.is_resolved
    reg = Oracle(Ridge().fit(np.eye(3), [0.0, 1.0, 2.0]), verbose=0)
    assert reg.resolved_task == "regression" and reg.resolved_classes is None
    assert reg.tensor_dtype == torch.float32 and reg.device is None


def test_adapter_per_kind_keeps_the_kind():
    from pellucid.oracle import FIRST_BLOCK_ROWS
    from pellucid.oracle.adapters import CallableAdapter, SklearnAdapter, TorchScriptAdapter

    assert FIRST_BLOCK_ROWS == 1024
    scripted = Oracle(torch.jit.script(_mlp(3, 2)), verbose=0)
    assert isinstance(scripted.adapter, TorchScriptAdapter) and scripted.kind == "torch"
    assert scripted.describe()["format"] == "torchscript"
    fn = Oracle(lambda X: np.asarray(X)[:, 0], task="regression", verbose=0)
    assert isinstance(fn.adapter, CallableAdapter) and fn.kind == "callable"
    est = Oracle(LogisticRegression().fit(np.eye(3), [0, 1, 1]), verbose=0)
    assert isinstance(est.adapter, SklearnAdapter) and est.kind == "sklearn"


def test_answer_gap_is_the_softmax_of_two_logits_and_counts_its_rows():
    """``answer_gap`` on the gap of a two-logit module's outputs is torch's softmax of those
    logits for the second class; it counts the rows, refuses non-finite gaps and a module that
    does not answer two logits."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.ReLU(), torch.nn.Linear(6, 2)).double()
    oracle = Oracle(net, task="classification")
    x = torch.randn(50, 4, dtype=torch.float64)
    oracle.forward(x[:1])
    oracle.reset_counter()
    with torch.no_grad():
        logits = net(x)
    p = oracle.answer_gap(logits[:, 1] - logits[:, 0])
    np.testing.assert_allclose(p.numpy(), torch.softmax(logits, dim=1)[:, 1].numpy(), rtol=0, atol=1e-15)
    assert (oracle.n_queries, oracle.n_calls) == (50, 1)
    with pytest.raises(ModelOutputError, match="NaN or infinite"):
        oracle.answer_gap(torch.tensor([0.0, float("nan")], dtype=torch.float64))
    with pytest.raises(ModelOutputError, match="one gap per row"):
        oracle.answer_gap(logits)
    three = Oracle(torch.nn.Linear(4, 3).double(), task="classification")
    three.forward(x[:1])
    with pytest.raises(ModelError, match="two logits"):
        three.answer_gap(logits[:, 0])


def test_text_inputs_are_the_columns_encoders_fitted_as_text():
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from pellucid import Oracle

    rng = np.random.default_rng(1)
    df = pd.DataFrame({"zip": rng.choice(["01650", "02207"], 80), "home": rng.choice(["rent", "own"], 80),
                       "grade": rng.integers(1, 4, 80), "amount": rng.normal(size=80)})
    y = rng.integers(0, 2, 80)
    ct = ColumnTransformer([
        ("zip", make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder()), ["zip"]),
        ("home", OrdinalEncoder(), [1]),  # by position
        ("grade", OneHotEncoder(), ["grade"]),  # categories fitted as numbers: not text
        ("rest", StandardScaler(), ["amount"]),
    ])
    pipe = make_pipeline(ct, LogisticRegression()).fit(df, y)
    assert Oracle(pipe).text_inputs() == {"zip", "home"}
    # The same transformer as a preprocess in front of another model.
    assert Oracle(lambda Z: np.full((len(Z), 2), 0.5), preprocess=ct, classes=[0, 1]).text_inputs() == {"zip", "home"}
    # Nothing to go by: a torch network, a callable on raw rows.
    assert Oracle(torch.nn.Linear(4, 2), classes=[0, 1]).text_inputs() == set()
    assert Oracle(lambda Z: np.full((len(Z), 2), 0.5), classes=[0, 1]).text_inputs() == set()
