"""The ``pellucid`` command.

``pellucid demo`` runs the whole path on the embedded credit example; ``pellucid explain``
runs it on the user's model and table. Errors about the input end the command with exit code
2 and one line saying what is wrong; nothing else is printed to stderr for them.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shlex
import signal
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import pandas as pd

from . import _validation as fmt
from .errors import DataFileError, ParameterError, PellucidError

MODEL_HELP = (
    "the model: FILE.py:ATTR or package.module:ATTR (an object, or a function of no arguments "
    "returning a model, a (model, preprocess) pair or a pellucid Oracle); a TorchScript file "
    "(.pt/.pth/.ts); a torch.export file (.pt2); an ONNX file (.onnx, run on the CPU with onnxruntime); "
    "or a joblib/pickle file (.joblib/.pkl/.pickle). "
    "WARNING: loading a pickle or joblib file, and importing a .py file, runs code from it; "
    "pellucid loads only the file you name here, so pass only files you trust."
)


#: The suffixes read_table reads as CSV.
_CSV = (".csv", ".csv.gz", ".txt")


def _suffix(path: Path) -> str:
    """A data file's format as its suffix says it (``.csv.gz`` whole)."""
    return "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()


def read_table(path: str | Path, text: Sequence[str] = ()) -> "pd.DataFrame":
    """Read a CSV or Parquet file, with errors that name the file. ``text``: CSV columns read
    as written, as text (codes such as ``"01234"``, which would otherwise read as numbers)."""
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataFileError(f"data file {str(p)!r} does not exist")
    if p.is_dir():
        raise DataFileError(f"data file {str(p)!r} is a directory")
    suffix = _suffix(p)
    try:
        if suffix in _CSV:
            df = pd.read_csv(p, dtype={c: str for c in text} or None)
        elif suffix in (".parquet", ".pq"):
            _check_flat_parquet(p)
            df = pd.read_parquet(p)
        else:
            raise DataFileError(f"data file {str(p)!r}: unknown format {suffix or '(no extension)'!r}; use .csv or .parquet")
    except DataFileError:
        raise
    except ImportError as e:
        raise DataFileError(f"cannot read {str(p)!r}: {e} (install pyarrow for Parquet)") from e
    except Exception as e:  # parser errors differ by engine; name the file and keep the cause
        raise DataFileError(f"cannot read {str(p)!r}: {type(e).__name__}: {e}") from e
    if len(df) == 0:
        raise DataFileError(f"data file {str(p)!r} has no rows")
    return df


def _as_the_model_reads(df: "pd.DataFrame", path: str | Path, oracle: Any, schema: Any = None) -> "pd.DataFrame":
    """The table, with the CSV columns that the model's encoders (or ``schema``) hold as text
    categories read again as text: a CSV carries no types, and a column of codes such as
    ``01234`` reads as the number 1234, which the model's encoder has never seen."""
    import pandas as pd

    if _suffix(Path(path)) not in _CSV:  # Parquet keeps its columns' types
        return df
    text = set(oracle.text_inputs())
    if schema is not None:
        text |= {f.name for f in schema if f.is_categorical and f.categories
                 and all(isinstance(c, str) for c in f.categories)}
    again = [c for c in df.columns if str(c) in text and not (pd.api.types.is_object_dtype(df[c])
                                                             or pd.api.types.is_string_dtype(df[c]))]
    return read_table(path, text=again) if again else df


def _check_flat_parquet(path: Path) -> None:
    """Refuse a Parquet file with a nested column (struct, list, map) before reading it: a
    feature takes one number, label or text per row."""
    import pyarrow.parquet as pq
    import pyarrow.types as pat

    for field in pq.read_schema(path):
        if pat.is_nested(field.type) or pat.is_dictionary(field.type) and pat.is_nested(field.type.value_type):
            raise DataFileError(
                f"data file {str(path)!r}: column {field.name!r} is nested ({field.type}); pellucid takes flat "
                "columns, one number, label or text per row: flatten it into columns of its own")


def _sizes(text: str) -> list[int]:
    try:
        out = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes takes comma-separated integers, got {text!r}") from None
    if not out or min(out) < 2:
        raise argparse.ArgumentTypeError(f"--sizes needs rule budgets >= 2, got {text!r}")
    return out


def _list(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _directions(text: str) -> dict[str, str]:
    out = {}
    for part in _list(text):
        name, _, direction = part.partition("=")
        if direction not in ("increase", "decrease") or not name:
            raise argparse.ArgumentTypeError(f"--monotone takes FEATURE=increase or FEATURE=decrease, got {part!r}")
        out[name] = direction
    return out


def _names(text: str) -> list[str]:
    from .surrogates import SURROGATES

    out = [v.strip() for v in text.split(",") if v.strip()]
    unknown = [v for v in out if v not in SURROGATES]
    if not out or unknown:
        raise argparse.ArgumentTypeError(
            f"--surrogates takes names from {sorted(SURROGATES)}, got {text!r}"
        )
    return out


def _concept(text: str) -> tuple[str, str]:
    name, sep, rule = text.partition("=")
    if not sep or not name.strip() or not rule.strip():
        raise argparse.ArgumentTypeError(f"--concept takes NAME=RULE, e.g. 'high leverage=debt_ratio > 0.6'; got {text!r}")
    return name.strip(), rule.strip()


def _methods(text: str) -> list[str]:
    from .attribution import METHODS

    out = [v.strip() for v in text.split(",") if v.strip()]
    if out == ["none"]:
        return []
    unknown = [v for v in out if v not in METHODS]
    if not out or unknown:
        raise argparse.ArgumentTypeError(
            f"--attributions takes 'none' or names from {sorted(METHODS)}, got {text!r}"
        )
    return out


def _row_labels(text: str) -> list[str]:
    out = [v.strip() for v in text.split(",") if v.strip()]
    if not out:
        raise argparse.ArgumentTypeError(f"--explain-rows takes comma-separated row ids, got {text!r}")
    return out


def _sample(text: str) -> int | str:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of rows or 'auto', got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number of rows, got {value}")
    return value


def _common(p: argparse.ArgumentParser, default_out: str) -> None:
    p.add_argument("--out", default=default_out, help=f"output directory for report.html and report.json (default: {default_out})")
    p.add_argument("--n", type=int, default=None, help="synthetic distillation rows (default: max(5000, 2 x observed training rows))")
    p.add_argument(
        "--strategy",
        default="observed,perturb,marginal",
        help="comma-separated distillation strategies: observed, perturb, marginal, neighbours, boundary, trepan (default: observed,perturb,marginal)",
    )
    p.add_argument("--sizes", type=_sizes, default=[4, 8, 16, 32], help="rule budgets of the frontier (default: 4,8,16,32)")
    p.add_argument("--stream-to", default=None, metavar="FILE.parquet",
                   help="distil in chunks and write every distilled row to this Parquet file (see docs/scale.md)")
    p.add_argument("--keep", type=int, default=None, metavar="N",
                   help="with --stream-to: synthetic rows held in memory, a uniform weighted sample")
    p.add_argument("--overwrite", action="store_true",
                   help="with --stream-to: replace an existing file (the --data file is never replaced)")
    p.add_argument("--sample", type=_sample, default=None, metavar="N|auto",
                   help="fit the surrogates on N distilled training rows, or 'auto': the smallest sample past "
                        "which doubling no longer lifts held-out agreement (default: every row)")
    p.add_argument(
        "--surrogates",
        type=_names,
        default=None,
        metavar="NAMES",
        help="comma-separated surrogate names to put on the frontier (default: the fast ones; see docs/surrogates.md)",
    )
    p.add_argument("--max-rules", type=int, default=12, help="most rules of the recommended surrogate (default: 12)")
    p.add_argument(
        "--min-agreement",
        type=float,
        default=None,
        help="recommend the smallest surrogate reaching this held-out agreement (R² for a regression)",
    )
    p.add_argument("--n-boot", type=int, default=10, help="bootstrap refits for rule stability; 0 for none (default: 10)")
    p.add_argument(
        "--attributions",
        type=_methods,
        default=None,
        metavar="METHODS",
        help="comma-separated attribution methods, or 'none' (default: saliency, gradient_x_input, "
        "integrated_gradients, smoothgrad and occlusion for a torch network; occlusion for other models)",
    )
    p.add_argument(
        "--explain-rows",
        type=_row_labels,
        default=None,
        metavar="ROWS",
        help="comma-separated rows to explain one by one in the report, besides the rows it picks itself: "
        "row numbers of the data file (0 is the first row), or values of --id-column",
    )
    p.add_argument("--sensitivity", nargs="?", type=int, const=1024, default=None, metavar="N",
                   help="add Sobol' indices (N base rows, default 1024) and Morris effects over the schema's ranges")
    p.add_argument("--concept", action="append", type=_concept, default=None, metavar="NAME=RULE",
                   help="a concept to test with TCAV, as a rule on raw features, e.g. "
                        "'high leverage=debt_ratio > 0.6' (repeat for more; needs --concept-layer)")
    p.add_argument("--concept-layer", default=None, metavar="LAYER",
                   help="the torch layer (name in model.named_modules()) whose activations the concepts are read in")
    p.add_argument("--visualise", action="store_true",
                   help="for each class, the in-schema row the network gives it most surely and the observed rows it is surest of")
    p.add_argument("--no-local", action="store_true", help="explain no single rows (no LIME, no anchors)")
    p.add_argument("--adverse-class", default=None, metavar="CLASS",
                   help="the outcome a decision is adverse in (e.g. bad): principal reasons and counterfactuals for "
                        "the single decisions, and the first reasons across the held-out rows decided so"
                        + (" (default: bad)" if default_out == "pellucid-demo" else ""))
    p.add_argument("--group", action="append", default=None, metavar="COL",
                   help="a column to compare groups by: favourable rate, accuracy and the surrogate's agreement per "
                        "group (repeat for more); a column the model does not take (where it names its inputs) is set "
                        "aside for the comparison" + (" (default: region)" if default_out == "pellucid-demo" else ""))
    p.add_argument("--statements", default=None, metavar="FILE",
                   help="with --adverse-class: the sentence a notice prints per feature and direction, beside each "
                        "principal reason (.csv feature,direction,statement, .json, .yaml or .toml; see docs/reasons.md)")
    p.add_argument("--protected", type=_list, default=None, metavar="NAMES",
                   help="comma-separated protected attributes: never changed by a counterfactual; rules and reasons "
                        "that use one are listed in Limitations")
    p.add_argument("--monotone", type=_directions, default=None, metavar="F=DIR,...",
                   help="features a counterfactual may move one way only, e.g. tenure_months=increase")
    p.add_argument("--immutable", type=_list, default=None, metavar="NAMES",
                   help="comma-separated features a counterfactual must not change"
                        + (" (default: age)" if default_out == "pellucid-demo" else ""))
    p.add_argument("--no-scorecard", action="store_true",
                   help="no scorecard (two classes) or sparse linear view of the network in the report")
    p.add_argument("--card", default=None, metavar="FILE",
                   help="model card: a .toml, .yaml or .json file with purpose, intended use, data lineage, "
                   "performance, limitations, ... (see docs/card.md)")
    p.add_argument("--n-jobs", type=int, default=None,
                   help="processes for the frontier's fits and the stability refits (default: one process per "
                        "core for both where the training rows hold 50,000 cells or more, the refits in the "
                        "background while the run goes on; on a smaller table the fits in this process and the "
                        "refits in one process per core when they would take over 5 s; 1: everything in this "
                        "process)")
    p.add_argument("--seed", type=int, default=0, help="random seed for the whole run (default: 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bar, no summary")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pellucid",
        description="Readable rules with measured fidelity for a trained network, filed as an HTML report.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="train a small network on the embedded credit example and explain it")
    _common(demo, "pellucid-demo")
    demo.add_argument("--rows", type=int, default=8000, help="rows of generated credit data (default: 8000)")

    ex = sub.add_parser("explain", help="explain your model on your data")
    ex.add_argument("--model", required=True, metavar="SPEC", help=MODEL_HELP)
    ex.add_argument("--data", required=True, metavar="FILE", help="observed rows in raw units: .csv or .parquet")
    ex.add_argument("--target", default=None, metavar="COL", help="ground-truth column to drop from the features and score the network on")
    ex.add_argument("--id-column", default=None, metavar="COL",
                    help="column that names the rows (e.g. an application number): dropped from the features and used as "
                         "each row's identity in the report (default: the row's number in the file, 0 is the first row)")
    ex.add_argument(
        "--preprocess",
        default=None,
        metavar="SPEC",
        help="preprocessing from raw rows to the model's input, as for --model (same warning applies)",
    )
    ex.add_argument("--schema", default=None, metavar="FILE",
                    help="a saved schema (Schema.to_json, or a report.json) that pins the data: its columns (less "
                         "--target and --id-column) must be the schema's features, taken by name in another order, with "
                         "the schema's kinds and categories (an unseen category stops the run)")
    ex.add_argument("--allow-nondeterministic", action="store_true",
                    help="explain a model whose answers change when asked twice about the same rows (the report "
                         "states the measured disagreement); without it such a model stops the run")
    ex.add_argument("--task", choices=["classification", "regression"], default=None, help="default: inferred from the model")
    ex.add_argument("--dask", default=None, metavar="SCHEDULER",
                    help="run the attributions and local explanations on a Dask cluster: a scheduler address "
                         "(tcp://host:8786) or local:N for N local worker processes (needs pip install 'pellucid[dask]'; "
                         "see docs/dask.md)")
    ex.add_argument(
        "--classes",
        default=None,
        metavar="A,B,...",
        help="class labels in the order of the model's outputs, e.g. good,bad (default: the model's own, or 0..k-1)",
    )
    _common(ex, "pellucid-report")

    rep = sub.add_parser("report", help="render a report again from its report.json (with a model card, or as PDF)")
    rep.add_argument("json", metavar="REPORT.json", help="a report.json that pellucid wrote (or the folder holding it)")
    rep.add_argument("--out", default=None, metavar="DIR", help="folder for report.html (and report.json with the card); default: the JSON's folder")
    rep.add_argument("--card", default=None, metavar="FILE", help="model card to add or replace (.toml, .yaml or .json; see docs/card.md)")
    rep.add_argument("--pdf", action="store_true", help="also print report.pdf with headless Chromium (Debian package chromium)")
    rep.add_argument("--chromium", default=None, metavar="PATH", help="the Chromium to print with (default: $PELLUCID_CHROMIUM, then chromium on PATH)")

    rs = sub.add_parser("reasons", help="principal reasons of every adverse decision in a table, to a CSV or Parquet file")
    rs.add_argument("--model", required=True, metavar="SPEC", help=MODEL_HELP)
    rs.add_argument("--data", required=True, metavar="FILE", help="the rows to explain, in raw units: .csv or .parquet")
    rs.add_argument("--out", required=True, metavar="FILE",
                    help="reasons.csv or reasons.parquet (one row per data row); FILE.json beside it holds the "
                         "settings, how often each feature is the first reason and the stability check")
    rs.add_argument("--adverse-class", required=True, metavar="CLASS",
                    help="the outcome reasons are given for, e.g. bad or declined")
    rs.add_argument("--k", type=int, default=4, help="most reasons per row (default: 4)")
    rs.add_argument("--statements", default=None, metavar="FILE",
                    help="sentences per feature and direction: .csv (feature,direction,statement), .json, .yaml or "
                         ".toml (see docs/reasons.md)")
    rs.add_argument("--reference", default=None, metavar="FILE",
                    help="what reasons are measured against: a population (.csv/.parquet) or a file of one row "
                         "(default: the rows of --data the network decides favourably)")
    rs.add_argument("--method", choices=["shapley", "lime"], default="shapley",
                    help="Shapley values (default) or LIME, both on the adverse class's log-odds")
    rs.add_argument("--background-rows", type=int, default=100,
                    help="rows drawn from a reference population (default: 100)")
    rs.add_argument("--samples", type=int, default=None, metavar="N",
                    help="Shapley samples per adverse row against a population (default: four per background row)")
    rs.add_argument("--preprocess", default=None, metavar="SPEC",
                    help="preprocessing from raw rows to the model's input, as for --model (same warning applies)")
    rs.add_argument("--classes", default=None, metavar="A,B,...", help="class labels in the order of the model's outputs")
    rs.add_argument("--id-column", default=None, metavar="COL",
                    help="column that names the rows (e.g. an application number): dropped from the features and "
                         "written as each row's identity (default: the row's number in the file, 0 is the first)")
    rs.add_argument("--target", default=None, metavar="COL", help="a ground-truth column to drop from the features")
    rs.add_argument("--chunk-rows", type=int, default=20_000, help="rows explained at once (default: 20,000)")
    rs.add_argument("--stability", nargs="?", type=int, const=200, default=None, metavar="N",
                    help="check N rows (default 200) again with another seed and background sample, and by LIME")
    rs.add_argument("--dask", default=None, metavar="SCHEDULER",
                    help="explain the chunks on a Dask cluster (an address, or local:N); the file is the same")
    rs.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    rs.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    rs.add_argument("--quiet", action="store_true", help="no progress, no summary")

    dif = sub.add_parser("diff", help="what changed between two reports (two model versions)")
    dif.add_argument("old", metavar="OLD.json", help="the older report.json (or the folder holding it)")
    dif.add_argument("new", metavar="NEW.json", help="the newer report.json (or the folder holding it)")
    dif.add_argument("--out", default=None, metavar="FILE", help="write FILE instead of printing Markdown: .md (Markdown), .html (a page) or .json (the diff's keys, see docs/diff.md)")
    dif.add_argument("--top-k", type=int, default=5, help="features compared per attribution ranking (default: 5)")
    return parser


def _run_demo(args: argparse.Namespace) -> tuple:
    from .demo import CLASSES, GROUND_TRUTH, TARGET, make_credit, train_credit_network
    from .oracle import Oracle

    if args.rows < 100:
        raise ParameterError(f"--rows must be at least 100, got {args.rows}")
    df = make_credit(args.rows, random_state=args.seed)
    net, pre = train_credit_network(df.drop(columns=TARGET), df[TARGET], random_state=args.seed)
    oracle = Oracle(net, preprocess=pre, task="classification", classes=list(CLASSES), verbose=0 if args.quiet else 1)
    meta = {"title": "pellucid demo: credit scoring network", "ground_truth_rules": GROUND_TRUTH}
    return oracle, df, TARGET, meta


def _run_explain(args: argparse.Namespace) -> tuple:
    from .oracle import Oracle, load_model

    df = read_table(args.data)
    if args.target is not None and args.target not in df.columns:
        raise DataFileError(f"--target {args.target!r} is not a column of {args.data!r} (columns: {list(map(str, df.columns))[:20]})")
    pre = load_model(args.preprocess) if args.preprocess else None
    classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
    oracle = Oracle.from_spec(args.model, preprocess=pre, task=args.task, classes=classes, verbose=0 if args.quiet else 1)
    df = _as_the_model_reads(df, args.data, oracle, getattr(args, "schema_loaded", None))
    if args.id_column is not None and args.id_column not in df.columns:
        raise DataFileError(f"--id-column {args.id_column!r} is not a column of {args.data!r} (columns: {list(map(str, df.columns))[:20]})")
    meta = {"title": f"pellucid report: {Path(args.model.split(':')[0]).name}", "data_file": str(args.data)}
    if args.schema is not None:
        meta["schema_file"] = str(args.schema)
    return oracle, df, args.target, meta


def _run_diff(args: argparse.Namespace) -> int:
    """``pellucid diff OLD NEW``: Markdown on stdout, or the file ``--out`` names."""
    from .reports.compare import diff_reports
    from .reports.diff import render_diff_text, write_diff

    try:
        d = diff_reports(args.old, args.new, top_k=args.top_k)
        if args.out is None:
            sys.stdout.write(render_diff_text(d))
        else:
            write_diff(d, args.out)
    except PellucidError as e:
        print(f"pellucid: error: {e}", file=sys.stderr)
        return 2
    return 0


def _run_reasons(args: argparse.Namespace) -> int:
    """``pellucid reasons``: every row's principal reasons, written chunk by chunk."""
    import json

    import numpy as np

    from ._files import check_new_file, written_at
    from .attribution.decision_reasons import (
        _export_suffix,
        explain_chunks,
        reason_plan,
        reason_stability,
        write_reasons,
    )
    from .oracle import Oracle, load_model

    t0 = time.perf_counter()
    try:
        out = Path(args.out)
        _export_suffix(out)
        check_new_file(out, "--out", overwrite=args.overwrite, inputs=[args.data, args.reference])
        for flag, value, least in (("--k", args.k, 1), ("--chunk-rows", args.chunk_rows, 1),
                                   ("--background-rows", args.background_rows, 2), ("--stability", args.stability, 1),
                                   ("--samples", args.samples, 1)):
            if value is not None and value < least:
                raise ParameterError(f"{flag} must be at least {least}; got {value}")
        df = read_table(args.data)
        _features_of(df, args, args.data)  # --target and --id-column checked before the model loads
        ref_df = None if args.reference is None else read_table(args.reference)
        pre = load_model(args.preprocess) if args.preprocess else None
        classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
        oracle = Oracle.from_spec(args.model, preprocess=pre, task="classification", classes=classes, verbose=0)
        # Codes the model encodes as text, read as written and held as categories.
        from .pipeline.stages import text_as_categories

        def features(table: "pd.DataFrame", path: str, keep_index: bool = True) -> "pd.DataFrame":
            return text_as_categories(oracle, _features_of(_as_the_model_reads(table, path, oracle), args, path,
                                                           keep_index=keep_index))

        X = features(df, args.data)
        reference = None if ref_df is None else features(ref_df, args.reference, keep_index=False)
        plan = reason_plan(oracle, X, reference=reference, k=args.k, method=args.method,
                           adverse_class=args.adverse_class, statements=args.statements,
                           background_rows=args.background_rows, n_samples=args.samples, random_state=args.seed)

        def progress(done: int) -> None:
            if not args.quiet:
                print(f"reasons: {done:,} of {len(X):,} rows in {fmt.seconds(time.perf_counter() - t0)}",
                      file=sys.stderr, flush=True)

        if args.dask:
            from .cluster import reasons_chunks

            chunks = reasons_chunks(plan, X, args.dask, chunk_rows=args.chunk_rows)
        else:
            chunks = explain_chunks(plan, X, args.chunk_rows)
        summary = write_reasons(chunks, out, progress=progress)
        record = {"settings": plan.describe(), "data_file": str(args.data),
                  "reference_file": None if args.reference is None else str(args.reference), **summary}
        if args.stability:
            pick = np.sort(np.random.default_rng(args.seed).choice(len(X), size=min(args.stability, len(X)),
                                                                    replace=False))
            record["stability"] = reason_stability(plan, X.iloc[pick])
        with written_at(Path(str(out) + ".json")) as tmp:
            tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    except PellucidError as e:
        print(f"pellucid: error: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        first = ", ".join(f"{f} ({c:,})" for f, c in list(summary["first_reason"].items())[:5])
        print(f"{summary['adverse']:,} of {summary['rows']:,} rows decided {plan.adverse_class!s}; first reasons: "
              f"{first or 'none'}")
        if summary["without_statement"]:
            print(f"reasons without a statement: {', '.join(summary['without_statement'])}")
        if args.stability:
            st = record["stability"]
            for name, c in (("another seed and background", st.get("another_seed")), ("LIME", st.get("lime"))):
                if c and c["rows"]:
                    print(f"stability ({name}, {c['rows']} adverse rows): top-{plan.k} overlap "
                          f"{fmt.pct(c['top_k_overlap'])}, same first reason {fmt.pct(c['first_reason_same'])}")
        print(f"wrote {out} and {out}.json in {fmt.seconds(time.perf_counter() - t0)}")
    return 0


def _features_of(df: "pd.DataFrame", args: argparse.Namespace, source: str, keep_index: bool = True) -> "pd.DataFrame":
    """The raw features of a table read for ``pellucid reasons``: --target dropped, --id-column
    as the index (unique), else the row's number in the file."""
    import pandas as pd

    for flag, col in (("--target", args.target), ("--id-column", args.id_column)):
        if col is not None and col not in df.columns and keep_index:
            raise DataFileError(f"{flag} {col!r} is not a column of {source!r} (columns: {list(map(str, df.columns))[:20]})")
    X = df.drop(columns=[c for c in (args.target, args.id_column) if c is not None and c in df.columns])
    if keep_index and args.id_column is not None:
        ids = df[args.id_column]
        if ids.isna().any() or ids.duplicated().any():
            bad = ids[ids.isna() | ids.duplicated()].iloc[0]
            raise DataFileError(f"--id-column {args.id_column!r} must name each row once; {bad!r} is missing or "
                                f"repeated in {source!r}")
        X.index = pd.Index(ids.to_numpy(), name=args.id_column)
    return X


def _run_report(args: argparse.Namespace) -> int:
    """``pellucid report REPORT.json``: the page again from its JSON, with a new card, as PDF."""
    from .reports import render_again

    try:
        paths = render_again(args.json, out_dir=args.out, card=args.card, pdf=args.pdf, chromium=args.chromium)
    except PellucidError as e:
        print(f"pellucid: error: {e}", file=sys.stderr)
        return 2
    print("wrote " + " and ".join(str(p) for p in paths))
    return 0


def _options(args: argparse.Namespace) -> dict:
    """The explain options the command line gave, as :func:`pellucid.explain` names them."""
    return dict(
        id_column=getattr(args, "id_column", None),
        out_dir=args.out,
        strategy=[s.strip() for s in args.strategy.split(",") if s.strip()],
        n=args.n,
        sizes=args.sizes,
        surrogates=args.surrogates,
        max_rules=args.max_rules,
        min_agreement=args.min_agreement,
        n_boot=args.n_boot,
        n_jobs=args.n_jobs,
        attributions=args.attributions,
        local=not args.no_local,
        local_rows=args.explain_rows,
        linear_view=not args.no_scorecard,
        card=args.card,
        random_state=args.seed,
        verbose=0 if args.quiet else 1,
        client=getattr(args, "dask", None),
        stream_to=args.stream_to,
        keep=args.keep,
        overwrite=args.overwrite,
        sample=args.sample,
        sensitivity=args.sensitivity or False,
        concepts=dict(args.concept) if args.concept else None,
        concept_layer=args.concept_layer,
        visualise=args.visualise,
        allow_nondeterministic=getattr(args, "allow_nondeterministic", False),
        adverse_class=args.adverse_class if args.adverse_class is not None or args.command != "demo" else "bad",
        groups=args.group if args.group is not None or args.command != "demo" else ["region"],
        immutable=args.immutable if args.immutable is not None or args.command != "demo" else ["age"],
        statements=args.statements,
        protected=args.protected or [],
        monotone=args.monotone or {},
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 2 for bad input, 130 interrupted)."""
    try:
        args = build_parser().parse_args(argv)
        with warnings.catch_warnings(), fmt.command_line():  # errors name the flags typed (--target)
            if getattr(args, "quiet", False):  # --quiet: errors alone (matplotlib's and the learners' warnings too)
                warnings.simplefilter("ignore")
            return _main(args, argv)
    except KeyboardInterrupt:
        # A second Ctrl-C while this one is answered must not end in a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # Worker processes (the frontier's fits, refits in the background) stop with the run;
        # what their pool's clean-up might warn of then is no news to a user who pressed Ctrl-C.
        from .executor import stop_local_workers

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            stop_local_workers()
        # Outputs are written to temporary files and renamed when whole: nothing half-written.
        print("pellucid: interrupted; no file was left half-written", file=sys.stderr)
        return 130


def entry() -> None:
    """The console script and ``python -m pellucid``: run :func:`main` and leave with its status.

    After an interrupt the process leaves with ``os._exit(130)`` once its streams are flushed: the
    interpreter remembers a Ctrl-C that reached code run through ``PyRun_String`` (pybind11's
    ``exec``, used inside some extensions) even when :func:`main` caught it, and would otherwise
    end by killing itself with SIGINT, so the caller saw -2 instead of 130 at random.
    """
    code = main()
    if code == 130:
        # What a normal exit would run first: among it, removing the worker pool's semaphores
        # and shared-memory folders, which its resource tracker would otherwise report.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(130)
    sys.exit(code)


def _main(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    if args.command == "diff":
        return _run_diff(args)
    if args.command == "report":
        return _run_report(args)
    if args.command == "reasons":
        return _run_reasons(args)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    undo = None
    try:
        from .pipeline import explain
        from .pipeline.config import RunConfig
        from .pipeline.run import check_outputs

        options = _options(args)
        # Every option and output path checked before the data and the model are read (a
        # demo trains its network first): named as they were typed.
        config = RunConfig.check(**options)
        data_file = getattr(args, "data", None)
        undo = check_outputs(config, data_file)
        if getattr(args, "schema", None) is not None:  # read first: a bad file stops before the model loads
            from .schema import Schema

            options["schema"] = args.schema_loaded = Schema.from_json(args.schema)
        oracle, df, target, meta = _run_demo(args) if args.command == "demo" else _run_explain(args)
        meta["command_line"] = "pellucid " + " ".join(shlex.quote(a) for a in argv_list)
        result = explain(oracle, df, target=target, meta=meta, **options)
    except PellucidError as e:
        if undo is not None:
            undo()
        print(f"pellucid: error: {e}", file=sys.stderr)
        return 2
    except BaseException:
        if undo is not None:
            undo()
        raise
    if not args.quiet:
        best = result.payload["surrogates"][result.payload["recommended"]]
        fid = best["fidelity"]
        # The page's words and numbers, from the same formatter.
        headline = (
            f"agreement {fmt.pct(fid['agreement'])} (95% interval {fmt.interval(fid['agreement_ci'])})"
            if fid.get("agreement") is not None
            else f"R² {fmt.fixed(fid['r2'])}"
        )
        print(f"recommended surrogate: {best['name']} ({best['complexity']['n_rules']} rules), {headline} "
              f"on {fid['n']:,} held-out rows")
        print(f"wrote {result.html_path} and {result.json_path} in {fmt.seconds(time.perf_counter() - t0)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
