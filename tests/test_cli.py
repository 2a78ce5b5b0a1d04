"""The command line end to end: the demo, `explain` on a user's files, and bad input."""

import json
import re
import textwrap

import numpy as np
import pytest

from pellucid.cli import main
from pellucid.demo import TARGET, make_credit

MODEL_FILE = textwrap.dedent(
    """
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from pellucid.demo import make_credit, TARGET

    def make(strict=False):
        df = make_credit(1500, random_state=3)
        X, y = df.drop(columns=TARGET), df[TARGET]
        cats = ["home", "employment", "region"]
        nums = [c for c in X.columns if c not in cats]
        pre = ColumnTransformer([
            ("num", SimpleImputer(strategy="median"), nums),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="error" if strict else "ignore")), cats),
        ])
        return make_pipeline(pre, LogisticRegression(max_iter=2000)).fit(X, y)

    def make_strict():
        # A pipeline that refuses categories it was not fitted on.
        return make(strict=True)

    NOT_A_MODEL = 42

    def wrong_shape(df):
        return np.ones((len(df) + 1, 2)) / 2
    """
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "model_def.py").write_text(MODEL_FILE)
    make_credit(1200, random_state=4).to_csv(d / "credit.csv", index=False)
    return d


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_demo_writes_a_report_that_finds_the_ground_truth(tmp_path, capsys):
    # Ground truth and rules alone: stability, attributions and single rows are left out (other tests).
    code, out, err = run(["demo", "--out", tmp_path, "--rows", 3000, "--n", 6000, "--quiet", "--n-boot", 0, "--attributions", "none", "--no-local"], capsys)
    assert code == 0, err
    html = (tmp_path / "report.html").read_text()
    payload = json.loads((tmp_path / "report.json").read_text())
    assert payload["schema_version"] and "<html" in html.lower()
    # The network learnt the rules: it agrees with the ground truth up to the 5% label noise.
    assert payload["ground_truth"]["accuracy"] > 0.85
    best = payload["surrogates"][payload["recommended"]]
    assert best["fidelity"]["agreement"] > 0.85
    used = {c["feature"] for r in best["rules"] for c in r["conditions"]}
    # The rules speak of the features that matter, never of those that do not.
    assert {"debt_ratio", "income"} <= used
    assert not used & {"region", "tenure_months"}
    for s in payload["surrogates"]:
        assert s["complexity"]["n_rules"] == len(s["rules"]) <= int(re.fullmatch(r".+_(\d+)(_observed)?", s["name"]).group(1))
        assert 0 <= s["fidelity"]["agreement"] <= 1


def test_explain_on_user_files(files, tmp_path, capsys):
    code, out, err = run(
        ["explain", "--model", f"{files}/model_def.py:make", "--data", files / "credit.csv", "--target", TARGET,
         "--out", tmp_path, "--sizes", "4,8", "--n", 3000, "--n-boot", 0, "--attributions", "none", "--no-local"],
        capsys,
    )
    assert code == 0, err
    payload = json.loads((tmp_path / "report.json").read_text())
    # The console writes the headline as the page does: one formatter for every number.
    head = re.search(r"agreement (\S+%) \(95% interval (\S+%–\S+%)\) on", out)
    assert head, out
    page = (tmp_path / "report.html").read_text()
    assert f"{head.group(1)}</span>" in page and f"95% interval {head.group(2)}" in page
    from pellucid.pipeline import default_surrogates

    front = payload["frontier"]
    # Every default surrogate at both budgets is on the frontier, and the scorecard view
    # (not a default candidate: fitted apart at the rule budget, then put on the frontier,
    # where it is as eligible as any entry) ...
    assert sorted((e["candidate"], e["size"], e["training"]) for e in front["entries"]) == sorted(
        [(c, k, t) for c in default_surrogates("classification", 2) for k in (4, 8) for t in ("distilled", "observed")]
        + [("scorecard", 12, "observed")]
    )
    # ... and the report lists its Pareto set, the selected one and the scorecard view, each
    # set of rules once: a Pareto entry not listed has the rules of one that is.
    lv = payload["linear_view"]
    assert payload["surrogates"][lv]["type"] == "Scorecard"
    shown = {e["surrogate_index"] for e in front["entries"] if e["surrogate_index"] is not None}
    assert shown == set(range(len(payload["surrogates"])))
    twins = {n for s in payload["surrogates"] for n in s["same_rules_as"]}
    for e in front["entries"]:
        if e["pareto"] and e["surrogate_index"] is None:
            name = f"{e['candidate']}_{e['size']}" + ("" if e["training"] == "distilled" else "_observed")
            assert name in twins
    for s in payload["surrogates"]:
        assert s["complexity"]["n_rules"] <= int(re.fullmatch(r".+_(\d+)(_observed)?", s["name"]).group(1))
    assert payload["model"]["kind"] == "sklearn"
    assert payload["model"]["sha256"]
    assert "report.html" in out


@pytest.mark.parametrize(
    "argv, pattern",
    [
        (["--data", "{d}/nope.csv"], "nope.csv.*does not exist"),
        (["--data", "{d}/model_def.py"], "unknown format '.py'"),
        (["--target", "outcome"], "'outcome' is not a column"),
        (["--model", "{d}/model_def.py:NOT_A_MODEL"], "int"),
        (["--model", "{d}/model_def.py:missing_attr"], "missing_attr"),
        (["--model", "{d}/model_def.py:wrong_shape", "--task", "classification"], r"rows"),
        (["--data", "{d}/empty.csv"], "no rows|empty"),
        (["--data", "{d}/inf.csv"], "'income'.*infinite"),
        (["--data", "{d}/unseen.csv", "--model", "{d}/model_def.py:make_strict"], "castle"),
        (["--out", "{d}/model_def.py"], "--out .*model_def.py. is a file, not a folder"),
    ],
)
def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys, argv, pattern):
    df = make_credit(300, random_state=5)
    df.iloc[:0].to_csv(files / "empty.csv", index=False)
    df.assign(income=np.where(np.arange(len(df)) == 7, np.inf, df["income"])).to_csv(files / "inf.csv", index=False)
    df.assign(home=np.where(np.arange(len(df)) == 9, "castle", df["home"])).to_csv(files / "unseen.csv", index=False)
    base = {"--model": f"{files}/model_def.py:make", "--data": f"{files}/credit.csv", "--target": TARGET}
    args = dict(base)
    for k, v in zip(argv[::2], argv[1::2], strict=True):
        args[k] = v.format(d=files)
    args.setdefault("--out", str(tmp_path))
    cmd = ["explain", *[x for kv in args.items() for x in kv], "--quiet", "--n", 1000]
    code, out, err = run(cmd, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pellucid: error:"), err
    import re

    assert re.search(pattern, lines[0]), lines[0]


def test_html_in_feature_names_is_escaped(tmp_path, capsys):
    evil = "<script>alert(1)</script>"
    df = make_credit(1500, random_state=6).rename(columns={"debt_ratio": evil})
    df["home"] = df["home"].replace({"other": "<img src=x onerror=alert(2)>"})
    df.to_csv(tmp_path / "evil.csv", index=False)
    (tmp_path / "m.py").write_text(
        "import numpy as np\n"
        f"def model(df):\n    p = (df[{evil!r}].astype(float) > 0.6).astype(float) * 0.8 + 0.1\n"
        "    return np.column_stack([1 - p, p])\n"
    )
    code, out, err = run(
        ["explain", "--model", f"{tmp_path}/m.py:model", "--data", tmp_path / "evil.csv", "--target", TARGET,
         "--task", "classification", "--classes", "good,bad", "--out", tmp_path / "r", "--quiet", "--n", 2000,
         "--n-boot", 0],
        capsys,
    )
    assert code == 0, err
    html = (tmp_path / "r" / "report.html").read_text()
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    payload = json.loads((tmp_path / "r" / "report.json").read_text())
    assert evil in {f["name"] for f in payload["data"]["schema"]["features"]}


REG_MODEL = textwrap.dedent(
    """
    import numpy as np

    def model(df):
        income = df["income"].astype(float).fillna(40.0)
        return 0.5 * income - 30.0 * df["debt_ratio"].astype(float) + np.where(df["home"] == "own", 10.0, 0.0)
    """
)


def test_regression_network_end_to_end(files, tmp_path, capsys):
    (files / "reg.py").write_text(REG_MODEL)
    df = make_credit(1200, random_state=4)
    df["amount_repaid"] = 0.5 * df["income"].fillna(40.0) - 30.0 * df["debt_ratio"]
    df.to_csv(files / "reg.csv", index=False)
    code, out, err = run(
        ["explain", "--model", f"{files}/reg.py:model", "--data", files / "reg.csv", "--target", "amount_repaid",
         "--task", "regression", "--out", tmp_path, "--quiet", "--n", 2000],
        capsys,
    )
    assert code == 0, err
    payload = json.loads((tmp_path / "report.json").read_text())
    assert payload["ground_truth"]["r2"] > 0.8
    for s in payload["surrogates"]:
        assert s["fidelity"]["agreement"] is None and -1 <= s["fidelity"]["r2"] <= 1
    # More leaves, closer to the network's outputs.
    r2 = [s["fidelity"]["r2"] for s in payload["surrogates"]]
    assert r2 == sorted(r2)


@pytest.mark.parametrize(
    "extra, pattern",
    [
        (["--model", "{d}/reg.py:model", "--task", "regression"], "'default' holds non-numeric values.*regression"),
        (["--model", "{d}/model_def.py:wrong_classes", "--task", "classification"], "classes are \\['0', '1'\\]"),
        (
            ["--model", "{d}/model_def.py:wrong_classes", "--task", "classification", "--classes", "bad,good,ugly"],
            "3 classes|ugly|columns",
        ),
    ],
)
def test_target_must_fit_the_task(files, tmp_path, capsys, extra, pattern):
    (files / "reg.py").write_text(REG_MODEL)
    with open(files / "model_def.py", "a") as fh:
        fh.write("\n\ndef wrong_classes(df):\n    return np.column_stack([np.full(len(df), 0.3), np.full(len(df), 0.7)])\n")
    extra = [e.format(d=files) for e in extra]
    code, out, err = run(
        ["explain", "--data", files / "credit.csv", "--target", TARGET, "--out", tmp_path, "--quiet", "--n", 500, *extra],
        capsys,
    )
    assert code == 2, err
    import re

    assert re.search(pattern, err), err


def test_codes_the_model_encodes_as_text_keep_their_leading_zeros(tmp_path, capsys):
    # A CSV carries no types: "01650" reads as the number 1650, which the pipeline's encoder,
    # fitted on text, has never seen. The model says the column is text; the codes stay as written.
    import joblib
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    codes = [f"{z:05d}" for z in (1650, 2207, 534, 91148, 48546, 7289)]
    df = pd.DataFrame({"zip": rng.choice(codes, 600), "amount": rng.normal(10, 3, 600)})
    y = np.where(df["zip"].isin(codes[:3]) ^ (df["amount"] > 12), "decline", "approve")
    pipe = make_pipeline(ColumnTransformer([("z", OneHotEncoder(handle_unknown="ignore"), ["zip"]),
                                            ("n", StandardScaler(), ["amount"])]), LogisticRegression())
    pipe.fit(df, y)
    joblib.dump(pipe, tmp_path / "m.joblib")
    df.to_csv(tmp_path / "codes.csv", index=False)
    code, out, err = run(["explain", "--model", tmp_path / "m.joblib", "--data", tmp_path / "codes.csv", "--out",
                          tmp_path / "rep", "--n", 1200, "--sizes", "4", "--n-boot", 0, "--attributions", "none",
                          "--quiet"], capsys)
    assert code == 0, err
    p = json.loads((tmp_path / "rep" / "report.json").read_text())
    zip_feature = next(f for f in p["data"]["schema"]["features"] if f["name"] == "zip")
    assert zip_feature["kind"] == "categorical" and set(zip_feature["categories"]) == set(codes)
    said = {v for s in p["surrogates"] for r in s["rules"] for c in r["conditions"] if c["feature"] == "zip"
            for v in c["value"]}
    assert said and said <= set(codes)  # "00534", not 534
    anchors = [row["anchor"] for row in p["local"]["rows"] if row.get("anchor")]
    assert anchors  # every single decision's anchor speaks of the codes as written
    for a in anchors:
        assert a["instance"]["zip"] in codes
        assert all(set(c["value"]) <= set(codes) for c in a["rule"]["conditions"] if c["feature"] == "zip")
    # pellucid reasons reads the file the same way: a reason names the code as written.
    code, out, err = run(["reasons", "--model", tmp_path / "m.joblib", "--data", tmp_path / "codes.csv",
                          "--adverse-class", "decline", "--out", tmp_path / "r.csv", "--quiet"], capsys)
    assert code == 0, err
    table = pd.read_csv(tmp_path / "r.csv", dtype=str)
    zips = table.loc[table["reason_1"] == "zip", "value_1"]
    assert len(zips) and set(zips) <= set(codes)
