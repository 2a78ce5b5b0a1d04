"""Tests of ONNX models in pellucid.oracle: every answer is checked against the same network
computed by hand in numpy on the encoded rows (or against onnxruntime called directly)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from pellucid.errors import ModelError, ModelLoadError, ModelOutputError, ParameterError  # noqa: E402
from pellucid.oracle import Oracle, load_model  # noqa: E402

from .conftest import N_ORACLE_ROWS as N  # rows of the `frame` fixture

HIDDEN = 8


# ---------------------------------------------------------------------- fixtures and graphs
# `frame` (50 raw rows, two categorical and two numeric columns) and `ct` (a fitted
# ColumnTransformer for it) come from conftest.py.


def _weights(d: int, k: int, dtype=np.float32, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(d, HIDDEN)).astype(dtype), rng.normal(size=HIDDEN).astype(dtype),
            rng.normal(size=(HIDDEN, k)).astype(dtype), rng.normal(size=k).astype(dtype)]


def _numpy_mlp(x: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """The graph of :func:`_mlp_graph`, by hand."""
    w1, b1, w2, b2 = weights
    return np.maximum(x @ w1 + b1, 0) @ w2 + b2


def _mlp_graph(weights: list[np.ndarray], *, elem: int = TensorProto.FLOAT, output: str = "logits",
               k_shape: list | None = None, extra_outputs: tuple = ()) -> onnx.ModelProto:
    """MatMul -> Add -> Relu -> MatMul -> Add, input "x" of shape ["N", d]."""
    d, k = weights[0].shape[0], weights[2].shape[1]
    inits = [numpy_helper.from_array(w, name) for w, name in zip(weights, ["w1", "b1", "w2", "b2"], strict=True)]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h1"]),
        helper.make_node("Relu", ["h1"], ["h2"]),
        helper.make_node("MatMul", ["h2", "w2"], ["z0"]),
        helper.make_node("Add", ["z0", "b2"], [output]),
    ]
    outputs = [helper.make_tensor_value_info(output, elem, k_shape or ["N", k])]
    for node, info in extra_outputs:
        nodes.append(node)
        outputs.append(info)
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", elem, ["N", d])], outputs, inits)
    return _model(graph)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every onnxruntime the extra allows
    onnx.checker.check_model(model)
    return model


def _save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.fixture
def weights(ct, frame) -> list[np.ndarray]:
    return _weights(ct.transform(frame).shape[1], 2)


@pytest.fixture
def mlp_path(tmp_path, weights) -> Path:
    return _save(_mlp_graph(weights), tmp_path / "mlp.onnx")


# ---------------------------------------------------------------------- answers
def test_query_matches_softmax_of_numpy_mlp(mlp_path, weights, ct, frame):
    session = load_model(mlp_path)
    assert isinstance(session, ort.InferenceSession)
    assert session.get_providers() == ["CPUExecutionProvider"]
    oracle = Oracle(session, preprocess=ct, task="classification")
    assert oracle.kind == "onnx"
    proba = oracle.query(frame)
    expected = _softmax(_numpy_mlp(ct.transform(frame).astype(np.float32), weights).astype(np.float64))
    assert proba.dtype == np.float64 and proba.shape == (N, 2)
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    assert oracle.output_ == "logits"
    assert list(oracle.classes_) == [0, 1]
    assert oracle.n_queries == N and oracle.n_calls == 1
    np.testing.assert_array_equal(oracle.predict(frame), expected.argmax(axis=1))
    assert oracle.n_queries == 2 * N and oracle.n_calls == 2


def test_batches_give_the_same_answer_and_count_rows(mlp_path, ct, frame):
    whole = Oracle(load_model(mlp_path), ct)
    batched = Oracle(load_model(mlp_path), ct, batch_size=7)
    np.testing.assert_allclose(batched.query(frame), whole.query(frame), rtol=0, atol=1e-7)
    assert batched.n_queries == N and batched.n_calls == -(-N // 7)
    assert whole.task == "classification"  # inferred from two output columns
    batched.query(frame.iloc[:3])
    assert batched.n_queries == N + 3


def test_probability_output_is_preferred_and_read_as_proba(tmp_path, weights, ct, frame):
    softmax = (helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
               helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]))
    session = load_model(_save(_mlp_graph(weights, extra_outputs=(softmax,)), tmp_path / "two.onnx"))
    oracle = Oracle(session, ct)
    proba = oracle.query(frame)
    expected = _softmax(_numpy_mlp(ct.transform(frame).astype(np.float32), weights).astype(np.float64))
    np.testing.assert_allclose(proba, expected, atol=1e-5)
    assert oracle.output_ == "proba"  # the softmax output was used, not the logits
    assert oracle.describe()["onnx"]["output"] == "probabilities"


def test_one_output_regression(tmp_path, ct, frame):
    weights = _weights(ct.transform(frame).shape[1], 1, seed=3)
    session = load_model(_save(_mlp_graph(weights, output="y"), tmp_path / "reg.onnx"))
    oracle = Oracle(session, ct, task="regression")
    values = oracle.query(frame)
    expected = _numpy_mlp(ct.transform(frame).astype(np.float32), weights)[:, 0]
    assert values.shape == (N,)
    np.testing.assert_allclose(values, expected, rtol=1e-5, atol=1e-5)


def test_double_input_gets_float64(tmp_path, ct, frame):
    weights = _weights(ct.transform(frame).shape[1], 2, dtype=np.float64, seed=5)
    session = load_model(_save(_mlp_graph(weights, elem=TensorProto.DOUBLE), tmp_path / "double.onnx"))
    seen = []

    class Spy:  # records what the oracle feeds the session
        def __init__(self, inner):
            self.inner = inner

        def run(self, names, feeds):
            seen.extend(feeds.values())
            return self.inner.run(names, feeds)

        def __getattr__(self, name):
            return getattr(self.inner, name)

    oracle = Oracle(session, ct)
    oracle.model = Spy(session)
    proba = oracle.query(frame)
    assert seen and all(a.dtype == np.float64 for a in seen)
    # Exact to double precision: the input was never rounded through float32.
    expected = _softmax(_numpy_mlp(ct.transform(frame), weights))
    np.testing.assert_allclose(proba, expected, rtol=1e-12, atol=1e-12)


def test_model_proto_is_accepted(weights, ct, frame):
    model = _mlp_graph(weights)
    direct = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = _softmax(direct.run(None, {"x": ct.transform(frame).astype(np.float32)})[0].astype(np.float64))
    oracle = Oracle(model, ct)
    assert oracle.kind == "onnx"
    np.testing.assert_allclose(oracle.query(frame), expected, atol=1e-6)


def test_numeric_frame_without_preprocess(tmp_path):
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "b", "c"])
    weights = _weights(3, 3, seed=2)
    oracle = Oracle(load_model(_save(_mlp_graph(weights), tmp_path / "m.onnx")))
    expected = _softmax(_numpy_mlp(X.to_numpy(np.float32), weights).astype(np.float64))
    np.testing.assert_allclose(oracle.query(X), expected, atol=1e-5)
    assert oracle.encoding_map(X).method == "identity"
    with pytest.raises(ModelError, match=r"'x' takes 3 columns .* have 2"):
        oracle.query(X[["a", "b"]])


# ---------------------------------------------------------------------- refusals
def test_two_inputs_are_refused_naming_both(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Add", ["left", "right"], ["out"])], "two",
        [helper.make_tensor_value_info("left", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("right", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 2])])
    session = load_model(_save(_model(graph), tmp_path / "two.onnx"))
    with pytest.raises(ModelError, match=r"2 inputs .*'left'.*'right'"):
        Oracle(session)


def test_constant_output_with_wrong_row_count(tmp_path, frame, ct):
    const = numpy_helper.from_array(np.array([[0.2, 0.8]], dtype=np.float32), "c")
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["out"], value=const)], "const",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", ct.transform(frame).shape[1]])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 2])])
    oracle = Oracle(load_model(_save(_model(graph), tmp_path / "const.onnx")), ct)
    with pytest.raises(ModelOutputError, match=f"1 rows .* for {N} input rows"):
        oracle.query(frame)


def test_zipmap_output_is_refused(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("ArgMax", ["x"], ["label"], axis=1, keepdims=0),
         helper.make_node("ZipMap", ["x"], ["output_probability"], classlabels_int64s=[0, 1], domain="ai.onnx.ml")],
        "zip", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
         helper.make_value_info("output_probability", helper.make_sequence_type_proto(
             helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)])
    model.ir_version = 8
    session = load_model(_save(model, tmp_path / "zip.onnx"))
    with pytest.raises(ModelOutputError, match="zipmap"):
        Oracle(session)


def test_fixed_batch_dimension_is_explained(tmp_path):
    weights = _weights(3, 2)
    model = _mlp_graph(weights)
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
    oracle = Oracle(load_model(_save(model, tmp_path / "fixed.onnx")))
    X = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_allclose(oracle.query(X[:1]), _softmax(_numpy_mlp(X[:1].astype(np.float32), weights)),
                               atol=1e-5)
    with pytest.raises(ModelError, match="fixed batch dimension of 1"):
        oracle.query(X)


def test_forward_is_refused(mlp_path, ct, frame):
    oracle = Oracle(load_model(mlp_path), ct)
    with pytest.raises(ModelError, match="ONNX models have no gradients"):
        oracle.forward(torch.tensor(oracle.encode(frame)))


# ---------------------------------------------------------------------- loading and describe
def test_missing_and_corrupt_files_name_the_file(tmp_path):
    missing = tmp_path / "missing.onnx"
    with pytest.raises(ModelLoadError, match="missing.onnx"):
        load_model(str(missing))
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"this is not a protobuf \x00\xff" * 10)
    with pytest.raises(ModelLoadError, match="corrupt.onnx") as info:
        load_model(str(corrupt))
    assert info.value.__cause__ is not None


def test_unknown_extension_lists_onnx(tmp_path):
    with pytest.raises(ModelLoadError, match=r"\.onnx"):
        load_model(str(tmp_path / "model.h5"))


def test_missing_onnxruntime_says_how_to_install(mlp_path, weights, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(ModelLoadError, match="pip install onnxruntime"):
        load_model(mlp_path)
    with pytest.raises(ModelError, match="pip install onnxruntime"):
        Oracle(_mlp_graph(weights))


def test_from_spec_sets_source_and_sha256(mlp_path, ct, frame):
    oracle = Oracle.from_spec(str(mlp_path), preprocess=ct)
    assert oracle.kind == "onnx"
    assert oracle.source == str(mlp_path)
    assert oracle.sha256 == hashlib.sha256(mlp_path.read_bytes()).hexdigest()
    assert oracle.query(frame).shape == (N, 2)


def test_describe_and_encoding_map(mlp_path, ct, frame):
    oracle = Oracle(load_model(mlp_path), ct)
    oracle.query(frame)
    info = json.loads(json.dumps(oracle.describe()))
    d = ct.transform(frame).shape[1]
    assert info["kind"] == "onnx"
    assert info["model_class"] == "InferenceSession"
    assert info["n_parameters"] is None
    assert info["onnx"]["inputs"] == [{"name": "x", "type": "tensor(float)", "shape": ["N", d]}]
    assert info["onnx"]["outputs"] == [{"name": "logits", "type": "tensor(float)", "shape": ["N", 2]}]
    assert info["n_queries"] == N
    emap = oracle.encoding_map(frame)
    assert emap.method == "structure" and emap.n_encoded == d
    assert emap.groups["x"] == (d - 2,) and emap.groups["y"] == (d - 1,)


def test_importing_the_oracle_does_not_import_onnxruntime():
    root = Path(__file__).resolve().parents[1]
    code = "import sys, pellucid.oracle; assert 'onnxruntime' not in sys.modules, 'onnxruntime was imported'"
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": ""})
    assert done.returncode == 0, done.stderr


def test_an_output_named_as_probabilities_must_hold_them(tmp_path, weights, ct, frame):
    """Logits under a name that says probabilities: refused, not read as logits."""
    session = load_model(_save(_mlp_graph(weights, output="probabilities"), tmp_path / "named.onnx"))
    with pytest.raises(ModelOutputError, match=r"\(the ONNX output 'probabilities' is named as probabilities\), but "
                                               r"its answer for row 0 of the rows queried is"):
        Oracle(session, ct).query(frame)
    assert Oracle(session, ct, output="logits").query(frame).shape == (N, 2)


# ---------------------------------------------------------------------- one input per column
def _column_graph() -> onnx.ModelProto:
    """Inputs a, b (float) and home (text), each (N, 1), as skl2onnx exports a pipeline fitted on
    a DataFrame: home -> +1 (own), -1 (rent), 0 (else); logits [0, 2a - b + home]."""
    w = np.array([[0.0, 2.0], [0.0, -1.0], [0.0, 1.0]], dtype=np.float32)
    nodes = [
        helper.make_node("LabelEncoder", ["home"], ["h"], domain="ai.onnx.ml", keys_strings=["own", "rent"],
                         values_floats=[1.0, -1.0], default_float=0.0),
        helper.make_node("Concat", ["a", "b", "h"], ["x"], axis=1),
        helper.make_node("MatMul", ["x", "w"], ["logits"]),
    ]
    inputs = [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 1]),
              helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 1]),
              helper.make_tensor_value_info("home", TensorProto.STRING, ["N", 1])]
    graph = helper.make_graph(nodes, "columns", inputs, [helper.make_tensor_value_info("logits", TensorProto.FLOAT,
                                                                                       ["N", 2])],
                              [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _column_rows(n: int = 60) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                         "home": rng.choice(["own", "rent", "other"], n).astype(object)})


def test_one_input_per_column_is_fed_by_name(tmp_path):
    session = load_model(_save(_column_graph(), tmp_path / "cols.onnx"))
    oracle = Oracle(session, classes=["no", "yes"])
    assert oracle.input_names() == (("a", "b", "home"), "the ONNX graph's input names")
    rows = _column_rows()
    z = (2 * rows["a"] - rows["b"] + rows["home"].map({"own": 1.0, "rent": -1.0, "other": 0.0})).to_numpy()
    expected = np.column_stack([1 / (1 + np.exp(z)), 1 / (1 + np.exp(-z))])
    np.testing.assert_allclose(oracle.query(rows[["home", "b", "a"]]), expected, atol=1e-5)  # any order: by name
    assert oracle.describe()["onnx"]["inputs"][2] == {"name": "home", "type": "tensor(string)", "shape": ["N", 1]}
    with pytest.raises(ModelError, match=r"column 'home' has 1 missing values, which the ONNX input 'home' \(text\)"):
        oracle.query(rows.assign(home=rows["home"].where(rows.index != 4)))
    with pytest.raises(ModelError, match=r"takes input 'b' but the rows have no column of that name"):
        oracle.query(rows[["a", "home"]])
    with pytest.raises(ParameterError, match="holds its own preprocessing: pass no preprocess"):
        Oracle(session, preprocess=lambda f: f)


def test_explain_matches_a_column_graph_by_its_input_names(tmp_path):
    from pellucid import explain
    from pellucid.errors import SchemaError

    session = load_model(_save(_column_graph(), tmp_path / "cols.onnx"))
    rows = _column_rows(400)
    res = explain(Oracle(session, classes=["no", "yes"]), rows[["home", "a", "b"]], out_dir=None, verbose=0, n=500,
                  sizes=(4,), n_boot=0, local=False, attributions=False, linear_view=False)
    inputs = res.payload["model"]["inputs"]
    assert inputs["reordered"] and inputs["columns"] == ["a", "b", "home"]
    assert inputs["names_from"] == "the ONNX graph's input names"
    with pytest.raises(SchemaError, match=r"\['label'\] that the model does not take \(its 3 inputs, from the ONNX "
                                          r"graph's input names: a, b, home\); 'label' looks like the target"):
        explain(Oracle(session), rows.assign(label=rows["a"] > 0), out_dir=None, verbose=0)
