import json

import numpy as np
import pandas as pd
import pytest

from pellucid.errors import SchemaError
from pellucid.schema import Kind, Schema

from .conftest import mixed_frame


def test_kinds_are_inferred_from_dtypes_and_values():
    s = Schema.from_frame(mixed_frame())
    kinds = {f.name: f.kind for f in s}
    assert kinds == {
        "x": Kind.NUMERIC,
        "count": Kind.INTEGER,  # integral floats (pandas makes ints float when one is missing)
        "flag": Kind.BINARY,
        "color": Kind.CATEGORICAL,
        "size": Kind.ORDINAL,
        "age": Kind.INTEGER,
    }


def test_ranges_categories_and_missing_match_pandas():
    df = mixed_frame()
    s = Schema.from_frame(df)
    assert s["x"].low == df["x"].min() and s["x"].high == df["x"].max()
    assert s["x"].n_missing == df["x"].isna().sum() > 0
    assert set(s["color"].categories) == set(df["color"].dropna().unique())
    assert s["size"].categories == ("S", "M", "L")  # ordinal keeps its declared order
    freq = df["color"].value_counts(normalize=True)
    assert dict(zip(s["color"].categories, s["color"].frequencies, strict=True)) == pytest.approx(freq.to_dict())


def test_kind_override_and_bad_kind():
    s = Schema.from_frame(mixed_frame(), kinds={"age": "categorical"})
    assert s["age"].kind is Kind.CATEGORICAL
    with pytest.raises(Exception, match="unknown feature kind"):
        Schema.from_frame(mixed_frame(), kinds={"age": "colour"})


def test_validate_returns_canonical_frame_without_touching_input():
    df = mixed_frame()
    s = Schema.from_frame(df)
    shuffled = df[list(reversed(df.columns))].assign(extra=1)
    before = shuffled.copy()
    out = s.validate(shuffled)
    pd.testing.assert_frame_equal(shuffled, before)
    assert list(out.columns) == s.names
    assert out["flag"].dtype == float and set(out["flag"].unique()) <= {0.0, 1.0}
    np.testing.assert_array_equal(out["x"].to_numpy(), df["x"].to_numpy())


@pytest.mark.parametrize(
    "mutate, pattern",
    [
        (lambda d: d.drop(columns="color"), r"missing column.*'color'"),
        (lambda d: d.assign(color="purple"), r"'color'.*never seen.*purple"),
        (lambda d: d.assign(x="ten"), r"column 'x' row 0: 'ten' is not a number"),
        (lambda d: d.assign(x=np.nan), r"'x'.*all \d+ rows are missing"),
        (lambda d: d.iloc[:0], r"empty \(0 rows\)"),
        (lambda d: d.assign(x=np.where(np.arange(len(d)) == 3, np.inf, 1.0)), r"'x'.*1 infinite"),
        (lambda d: d.assign(flag=2), r"'flag'.*binary"),
    ],
)
def test_validate_errors_name_the_problem(mutate, pattern):
    df = mixed_frame()
    s = Schema.from_frame(df)
    with pytest.raises(SchemaError, match=pattern):
        s.validate(mutate(df))


def test_validate_rejects_non_frames():
    s = Schema.from_frame(mixed_frame())
    with pytest.raises(SchemaError, match="DataFrame"):
        s.validate(np.zeros((3, 6)))


def test_from_frame_errors():
    with pytest.raises(SchemaError, match="empty"):
        Schema.from_frame(pd.DataFrame({"a": []}))
    with pytest.raises(SchemaError, match="'a'.*all 3 rows are missing"):
        Schema.from_frame(pd.DataFrame({"a": [np.nan] * 3, "b": [1, 2, 3]}))
    with pytest.raises(SchemaError, match="infinite"):
        Schema.from_frame(pd.DataFrame({"a": [1.0, np.inf, 2.0]}))
    with pytest.raises(SchemaError, match="ordinal"):
        Schema.from_frame(pd.DataFrame({"g": ["a", "b"]}), kinds={"g": "ordinal"})


def test_roundtrip_through_dict():
    s = Schema.from_frame(mixed_frame())
    assert Schema.from_dict(s.to_dict()) == s


def test_numbers_in_object_columns_are_numbers():
    df = pd.DataFrame({"a": pd.Series(["1", "2", None, "4"], dtype=object)})
    assert Schema.from_frame(df)["a"].kind is Kind.INTEGER


def test_rows_to_explain_may_leave_a_column_unrecorded():
    ref = pd.DataFrame({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
    schema = Schema.from_frame(ref)
    one = pd.DataFrame({"x": [np.nan], "c": ["b"]})
    with pytest.raises(SchemaError, match="'x'.*no values"):
        schema.validate(one)
    got = schema.validate(one, what="row", allow_empty_columns=True)
    assert np.isnan(got["x"].iloc[0]) and got["c"].iloc[0] == "b"
    with pytest.raises(SchemaError, match="never seen"):
        schema.validate(pd.DataFrame({"x": [np.nan], "c": ["z"]}), allow_empty_columns=True)


def _kind_by_sorting(s: pd.Series) -> Kind:
    """The kind rule written with np.unique over every value, as a reference for the cheaper
    elementwise tests from_frame uses."""
    v = s.dropna().to_numpy(dtype=float)
    uniq = np.unique(v)
    if len(uniq) <= 2 and set(uniq.tolist()) <= {0.0, 1.0}:
        return Kind.BINARY
    if pd.api.types.is_integer_dtype(s.dtype):
        return Kind.INTEGER
    if len(uniq) > 2 and np.all(np.isfinite(uniq)) and np.all(uniq == np.round(uniq)):
        return Kind.INTEGER
    return Kind.NUMERIC


@pytest.mark.parametrize("values", [
    [0.0, 1.0, 1.0, np.nan], [1.0, 1.0, 1.0], [0, 2, 2, 0], [3.0, 3.0, np.nan], [0.0, 2.0, 5.0],
    [0.5, 1.0, 2.0], [1, 2, 3], [-1.0, 0.0, 1.0], [0, 1], [7.0, 7.0, 8.0, np.nan],
])
def test_kind_inference_agrees_with_the_sorting_rule(values):
    s = pd.Series(values, name="v")
    assert Schema.from_frame(s.to_frame())["v"].kind is _kind_by_sorting(s)


@pytest.mark.parametrize("layout", ["C", "F"])
def test_numeric_frame_validates_into_an_own_float_block(layout):
    rng = np.random.default_rng(0)
    a = np.asarray(rng.standard_normal((50, 4)).astype(np.float32), order=layout)
    df = pd.DataFrame(a, columns=list("abcd")).assign(n=np.arange(50), m=pd.array([1, None] * 25, dtype="Int64"))
    s = Schema.from_frame(df)
    out = s.validate(df)
    assert all(t == np.float64 for t in out.dtypes)
    np.testing.assert_array_equal(out[list("abcd")].to_numpy(), a.astype(np.float64))
    np.testing.assert_array_equal(out["m"].to_numpy(), np.where(np.arange(50) % 2 == 0, 1.0, np.nan))
    out.iloc[0, 0] = 99.0  # the result owns its memory: the user's table is untouched
    assert df.iloc[0, 0] == a[0, 0] != 99.0
    with pytest.raises(SchemaError, match=r"'m'.*all 2 rows are missing"):
        s.validate(df.iloc[[1, 3]])


def test_validating_some_rows_equals_validating_their_copy():
    df = mixed_frame()
    s = Schema.from_frame(df)
    rows = np.random.default_rng(1).permutation(len(df))[:120]
    pd.testing.assert_frame_equal(s.validate(df, rows=rows), s.validate(df.iloc[rows]))
    bad = df.assign(x=np.where(np.arange(len(df)) == 7, np.inf, 1.0))
    with pytest.raises(SchemaError, match=r"'x'.*first at row 7"):
        s.validate(bad, rows=np.r_[3, 7, 1])
    for wrong in (np.r_[0, len(df)], np.r_[-1], np.r_[0.5]):
        with pytest.raises(SchemaError, match="rows must be positions"):
            s.validate(df, rows=wrong)


def test_repeated_column_names_are_refused_by_name():
    df = pd.DataFrame(np.arange(12.0).reshape(4, 3), columns=["a", "b", "a"])
    with pytest.raises(SchemaError, match=r"several columns with the same name: 'a' \(columns 0, 2, counting from 0\)"):
        Schema.from_frame(df)
    schema = Schema.from_frame(df.iloc[:, :2])
    with pytest.raises(SchemaError, match=r"the rows to check has several columns with the same name: 'a'"):
        schema.validate(df, what="rows to check")
    # Names are compared as features name them: as text.
    with pytest.raises(SchemaError, match=r"'1' \(columns 0, 1"):
        Schema.from_frame(pd.DataFrame([[1.0, 2.0]], columns=[1, "1"]))


def test_a_word_among_numbers_names_its_column_and_row():
    df = pd.DataFrame({"income": [str(v) for v in range(40)], "b": np.arange(40.0)}, index=np.arange(40) + 100)
    df.loc[117, "income"] = "abc"
    with pytest.raises(SchemaError, match=r"^column 'income' row 117: 'abc' is not a number; the column's other "
                                          r"values are numbers.*kinds="):
        Schema.from_frame(df)
    # Declared categorical, the column is labels; a column mostly of words is labels as before.
    assert Schema.from_frame(df, kinds={"income": "categorical"})["income"].kind is Kind.CATEGORICAL
    words = df.assign(income=np.where(np.arange(40) % 2 == 0, "low", df["income"]))
    assert Schema.from_frame(words)["income"].kind is Kind.CATEGORICAL
    # Checked against a schema, the first such row is named, and how many there are.
    schema = Schema.from_frame(df.drop(index=117))
    two = df.assign(income=df["income"].where(df.index != 130, "n/a?"))
    with pytest.raises(SchemaError, match=r"^column 'income' row 117: 'abc' is not a number; 2 rows of the table hold "
                                          r"text there \(the feature is integer\)"):
        schema.validate(two)


@pytest.mark.parametrize("nested", [{"city": "Oslo"}, [1, 2], np.array([1.0, 2.0]), (1, 2)])
def test_nested_values_are_refused_by_column_and_row(nested):
    """What a Parquet struct or list column becomes in pandas: one object per cell."""
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0], "addr": pd.Series([None, nested, nested], dtype=object)})
    pattern = rf"column 'addr' of the table holds nested values \({type(nested).__name__} at row 1; 2 rows\)"
    with pytest.raises(SchemaError, match=pattern):
        Schema.from_frame(df)
    for flat in ([7.0, 8.0, 9.0], ["p", "q", "p"]):
        with pytest.raises(SchemaError, match=pattern):
            Schema.from_frame(df.assign(addr=flat)).validate(df)


def test_schema_round_trips_through_a_json_file(tmp_path):
    df = mixed_frame()
    s = Schema.from_frame(df)
    text = s.to_json(tmp_path / "schema.json")
    assert (tmp_path / "schema.json").read_text() == text and not list(tmp_path.glob("*.tmp"))
    back = Schema.from_json(tmp_path / "schema.json")
    assert back == s and back.names == s.names
    assert [f.kind for f in back] == [f.kind for f in s] and back["size"].categories == ("S", "M", "L")
    assert Schema.from_json(text) == s  # the text itself
    # A report's JSON holds the schema of the table it explained.
    (tmp_path / "report.json").write_text(json.dumps({"data": {"schema": s.to_dict()}}))
    assert Schema.from_json(tmp_path / "report.json") == s


def test_schema_files_that_are_not_schemas(tmp_path):
    from pellucid.errors import DataFileError

    with pytest.raises(DataFileError, match=r"schema file '.*nope.json' does not exist"):
        Schema.from_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(DataFileError, match=r"'.*bad.json' is not JSON"):
        Schema.from_json(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text('{"features": 3}')
    with pytest.raises(SchemaError, match="has no list of 'features'"):
        Schema.from_json(tmp_path / "list.json")
    (tmp_path / "kind.json").write_text('{"features": [{"name": "a", "kind": "colour"}]}')
    with pytest.raises(SchemaError, match="is not a pellucid schema: a feature is malformed"):
        Schema.from_json(tmp_path / "kind.json")
    (tmp_path / "name.json").write_text('{"features": [{"kind": "numeric"}]}')
    with pytest.raises(SchemaError, match="a feature lacks 'name'"):
        Schema.from_json(tmp_path / "name.json")
