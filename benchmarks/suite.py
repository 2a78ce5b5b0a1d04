"""One run that times every stage of pellucid against its floor and its peers.

Stages (``--only`` picks some; the default runs all but ``frontier``, ``stream`` and ``dask``, ``--all`` adds them):

* ``forward`` / ``query`` / ``distill``: N rows (1M; ``--quick`` 200k) of 20 standard-normal
  features through the peers' 20-64-64-2 MLP (benchmarks/_tasks.py ``peer_mlp``, the network of
  shared/anchors/peer_baselines.py). The floor is numpy float32 rows -> torch -> softmax under
  no_grad, at the best of batch sizes 4096/8192/65536 (and at 65536 alone, as the peer script
  does). pellucid: ``Oracle(net, task="classification", verbose=0).query(DataFrame)``; ``distill``
  with strategy "observed" on the N-row table (the whole call), and with
  ("observed", "perturb", "marginal") on N/4 observed rows plus 3N/4 synthetic ones. The
  "sampling floor" is the random draws alone that the synthetic rows need (one integer index and
  one normal per synthetic value, numpy Generator): for a network this small drawing random
  numbers costs more than the network.
* ``tree``: pellucid's ``DecisionTree`` (32 leaves) on a distillation set of 100k rows (quick 30k)
  vs scikit-learn's DecisionTreeClassifier on the same training rows and labels; fit time and
  agreement with the network on the set's held-out observed rows.
* ``rules``: pellucid's ``figs``, ``greedy_rule_list`` and ``exhaustive_rule_list`` (16 rules) vs
  imodels' FIGSClassifier and GreedyRuleListClassifier (and scikit-learn's tree for the exhaustive
  rule list, which has no peer) on a distillation set of the peer MLP's own training rows
  (15,000 observed + 5,000 synthetic; quick 5,000 + 2,500).
* ``ig``: ``pellucid.attribution.integrated_gradients`` vs captum's ``IntegratedGradients`` (50
  steps, Gauss-Legendre, zero baseline, target 1, 1,000 rows), beside a hand-written floor (one
  forward and backward pass over the stacked rows x steps); time and max |difference|.
* ``lime``: pellucid's batched ``lime`` vs the ``lime`` package, ms per instance at 5000 samples,
  beside the forward pass of the samples alone.
* ``report``: ``pellucid.explain`` on 20k rows x 20 mixed raw features (quick 5k) with a trimmed
  analysis (decision trees only, 3 bootstrap refits, IG only); the report step
  (``timings["report"]``), ``reports.build`` again on the finished payload, and the HTML size.
* ``scaling``: query, distill and tree at 10k/100k/1M rows (20 features) and at 10/50/200 features
  (100k rows; one MLP per width), IG at 1k/10k/100k rows and LIME at 50/200/1000 rows (captum and
  the floors where cheap); a log-log slope per series (cost ~ size^slope).
* ``reasons``: runs benchmarks/reasons.py (principal reasons for 100,000 rows, quick 20,000,
  and the Dask path's identical output) as a subprocess;
* ``counterfactuals``: runs benchmarks/counterfactuals.py (against DiCE, needs dice-ml) as a
  subprocess;
* ``explain``: runs benchmarks/explain_speed.py (the whole ``pellucid.explain`` with default options
  on credit 4,454 x 13, lending 9,857 x 23, known rules 20,000 x 10 and breast cancer 569 x 30; the
  frontier against one fit per candidate at its largest budget, stability against the frontier;
  ``--quick``: credit and breast cancer) as a subprocess;
* ``frontier``: runs benchmarks/rule_frontier.py (held-out agreement of the recommended entry
  against the rule peers at each budget) as a subprocess, ``--quick`` with it; not in the default run;
* ``stream`` / ``dask``: run benchmarks/streaming.py and benchmarks/dask_speedup.py as subprocesses
  (``--quick`` passed through) and fold their results (benchmarks/results/<stem>.json) in; the
  table says so when a script does not exist.

Timings under a second are the best of 3 repeats (forward, query, distill and the sampling floor: under
5 seconds); longer ones are a single run. ``distill`` is timed warm, after two untimed calls, and its
first call is recorded beside it (see ``warm_timed``: on this VM fresh memory costs more than the
work). ``distill observed`` is also timed with the schema given, as ``explain`` calls it. torch uses all
the machine's cores unless ``--threads`` says otherwise; the JSON records the machine.

Run: .venv/bin/python -W ignore benchmarks/suite.py [--quick] [--only STAGE ...] [--all] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _tasks import best_of, peer_mlp, write_results  # noqa: E402

from pellucid import DecisionTree, Oracle, Schema, distill  # noqa: E402
from pellucid._device import torch_threads  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
STAGES = ("forward", "query", "distill", "tree", "rules", "ig", "lime", "report", "scaling", "shapley", "reasons",
          "counterfactuals", "explain", "frontier", "stream", "dask")
DEFAULT = STAGES[:-3]
EXTERNAL = {"shapley": "shapley", "reasons": "reasons", "counterfactuals": "counterfactuals", "explain": "explain_speed",
            "frontier": "rule_frontier", "stream": "streaming",
            "dask": "dask_speedup"}  # stage -> script stem (and its results stem)
SYNTH = ("observed", "perturb", "marginal")
BATCHES = (4096, 8192, 65536)
# Stage 1's timings are short and the floor they are divided by is shorter: best of 3 up to this many seconds.
SHORT = 5.0

FULL = dict(rows=1_000_000, tree_rows=100_000, tree_leaves=32, rule_obs=15_000, rule_synth=5_000, rules=16,
            ig_rows=1_000, lime_rows=200, lime_peer_rows=10, report_rows=20_000,
            scale_rows=(10_000, 100_000, 1_000_000), scale_features=(10, 50, 200), scale_features_rows=100_000,
            scale_ig=(1_000, 10_000, 100_000), scale_ig_captum=10_000, scale_lime=(50, 200, 1_000))
QUICK = dict(rows=200_000, tree_rows=30_000, tree_leaves=32, rule_obs=5_000, rule_synth=2_500, rules=16,
             ig_rows=1_000, lime_rows=50, lime_peer_rows=3, report_rows=5_000,
             scale_rows=(10_000, 30_000, 100_000), scale_features=(10, 50, 200), scale_features_rows=20_000,
             scale_ig=(300, 1_000, 3_000), scale_ig_captum=3_000, scale_lime=(20, 50, 100))


# ----------------------------------------------------------------------------- helpers
def timed(fn: Callable[[], Any], under: float = 1.0, repeats: int = 3) -> tuple[float, Any]:
    """Seconds of one call of ``fn``; a call under ``under`` seconds is repeated and the best kept."""
    t = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t
    if secs < under and repeats > 1:
        best, out = best_of(fn, repeats - 1)
        secs = min(secs, best)
    return secs, out


def warm_timed(fn: Callable[[], Any], under: float = 1.0, warm: int = 2) -> tuple[float, float, Any]:
    """(first-call seconds, warm seconds, result): ``warm`` untimed calls, then :func:`timed`.

    On this VM the first touch of freshly mapped memory is slow (numpy asks for transparent
    huge pages and the kernel compacts memory to find them: up to 3 ms per MB), so the first
    calls of anything that allocates a large result pay for pages, not for work. The floor
    reads an array already in memory; the warm figure compares like with like, and the cold
    first call is recorded beside it.
    """
    t = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t
    for _ in range(warm - 1):
        out = fn()
    del out
    gc.collect()
    secs, out = timed(fn, under)
    return first, secs, out


def slope(sizes, secs) -> float | None:
    """Exponent of a power law cost ~ size^slope, least squares on log-log."""
    pts = [(s, t) for s, t in zip(sizes, secs) if t is not None and t > 0]
    if len(pts) < 2:
        return None
    x, y = np.log([p[0] for p in pts]), np.log([p[1] for p in pts])
    return float(np.polyfit(x, y, 1)[0])


def columns(f: int) -> list[str]:
    return [f"x{i}" for i in range(f)]


def normal_table(n: int, f: int, seed: int) -> pd.DataFrame:
    """Standard-normal rows (as the peer script's forward benchmark uses), float32 like its rows."""
    a = np.random.default_rng(seed).standard_normal((n, f), dtype=np.float32)
    return pd.DataFrame(a, columns=columns(f))


def check_not_constant(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, what: str) -> dict:
    """The network's class shares on X; a network that answers one class everywhere is refused."""
    labels = predict(X).argmax(1)
    share = np.bincount(labels, minlength=2) / len(labels)
    if share.max() > 0.99:
        raise RuntimeError(f"{what}: the network predicts one class on {100 * share.max():.1f}% of rows")
    return {"class_share": [round(float(s), 4) for s in share]}


def softmax_forward(net: torch.nn.Module, a: np.ndarray, batch: int) -> np.ndarray:
    """The floor: float32 rows -> torch -> softmax -> numpy, batch by batch, no autograd."""
    out = np.empty((len(a), 2), dtype=np.float32)
    with torch.no_grad():
        for i in range(0, len(a), batch):
            out[i:i + batch] = torch.softmax(net(torch.from_numpy(a[i:i + batch])), -1).numpy()
    return out


def train_width(f: int, seed: int = 0) -> torch.nn.Module:
    """An f-64-64-2 MLP trained briefly (5 epochs) on make_classification rows, standardised."""
    from sklearn.datasets import make_classification

    torch.manual_seed(seed)
    X, y = make_classification(n_samples=10_000, n_features=f, n_informative=min(8, f), n_redundant=min(2, f - min(8, f)),
                               random_state=seed)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(f, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(),
                              torch.nn.Linear(64, 2))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    g = torch.Generator().manual_seed(seed)
    for _ in range(5):
        perm = torch.randperm(len(Xt), generator=g)
        for i in range(0, len(Xt), 256):
            idx = perm[i:i + 256]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    return net.eval()


def machine(threads: int) -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for mod in ("numpy", "pandas", "sklearn", "imodels", "lime", "captum"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", "?")
        except Exception as e:  # a missing peer is recorded, not fatal
            versions[mod] = f"unavailable ({type(e).__name__})"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "pellucid"], cwd=ROOT, capture_output=True,
                               text=True).stdout.splitlines()
    except OSError:
        commit, dirty = "?", []
    return {"cpu": cpu, "cores": os.cpu_count(), "cores_available": len(os.sched_getaffinity(0)),
            "torch_threads": threads, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "versions": versions, "git_commit": commit,
            "pellucid_files_modified": [d[3:] for d in dirty]}


# ----------------------------------------------------------------------------- suite
class Suite:
    def __init__(self, cfg: dict, args: argparse.Namespace) -> None:
        self.cfg, self.args = cfg, args
        self.rows: list[dict] = []  # the table's rows
        self.data: dict[str, Any] = {}  # everything measured, by stage
        self._net = None
        self._nets: dict[int, torch.nn.Module] = {}
        self._dsets: dict[tuple[int, int], Any] = {}
        self._measured: dict[tuple, dict] = {}  # (kind, rows, features) -> measurement, shared by stages

    # --- shared material
    @property
    def peer(self):
        if self._net is None:
            t = time.perf_counter()
            with torch_threads(1):  # batches of 256 rows gain nothing from more threads
                net, Xtr, Xte, yte = peer_mlp()
            proba = lambda a: softmax_forward(net, np.ascontiguousarray(a, dtype=np.float32), 65536)  # noqa: E731
            info = check_not_constant(proba, Xte, "peer MLP")
            info["test_accuracy"] = float((proba(Xte).argmax(1) == yte).mean())
            info["train_seconds"] = time.perf_counter() - t
            self.data["networks"] = {"peer_20": info}
            self._net = (net, Xtr, Xte)
            self._nets[20] = net
        return self._net

    def net(self, f: int) -> torch.nn.Module:
        if f == 20:
            return self.peer[0]
        if f not in self._nets:
            with torch_threads(1):
                net = train_width(f)
            info = check_not_constant(lambda a: softmax_forward(net, a, 65536),
                                      normal_table(5_000, f, 99).to_numpy(), f"MLP with {f} features")
            self.data.setdefault("networks", {})[f"mlp_{f}"] = info
            self._nets[f] = net
        return self._nets[f]

    def add(self, stage: str, size: str, ours: float | None, other: float | None, other_name: str, note: str = "",
            ratio: float | None = None) -> None:
        if ratio is None and ours is not None and other:
            ratio = ours / other
        self.rows.append({"stage": stage, "size": size, "pellucid_s": ours, "vs": other_name, "vs_s": other,
                          "ratio": ratio, "note": note})

    # --- 1. forward / query / distill
    def floor(self, n: int, f: int) -> dict:
        key = ("floor", n, f)
        if key not in self._measured:
            net, a = self.net(f), normal_table(n, f, 1).to_numpy()
            times = {b: timed(lambda b=b: softmax_forward(net, a, b), SHORT)[0] for b in BATCHES}
            best = min(times, key=times.get)
            self._measured[key] = {"by_batch": {str(b): s for b, s in times.items()}, "best_batch": best,
                                   "best_s": times[best], "at_65536_s": times[65536]}
        return self._measured[key]

    def query(self, n: int, f: int) -> dict:
        key = ("query", n, f)
        if key not in self._measured:
            X = normal_table(n, f, 1)
            oracle = Oracle(self.net(f), task="classification", verbose=0)
            secs, out = timed(lambda: oracle.query(X), SHORT)
            self._measured[key] = {"seconds": secs, "batch_size": oracle.batch_size_,
                                   "class_share": (np.bincount(out.argmax(1), minlength=2) / n).round(4).tolist()}
        return self._measured[key]

    def distill_observed(self, n: int, f: int) -> dict:
        key = ("distill_observed", n, f)
        if key not in self._measured:
            X = normal_table(n, f, 1)
            oracle = Oracle(self.net(f), task="classification", verbose=0)
            first, secs, d = warm_timed(lambda: distill(oracle, X, strategy="observed", random_state=0), SHORT)
            rows, n_queries = len(d), int(d.n_queries)
            del d
            schema = Schema.from_frame(X)
            _, given, _ = warm_timed(lambda: distill(oracle, X, strategy="observed", schema=schema, random_state=0),
                                     SHORT, warm=1)
            infer, _ = timed(lambda: Schema.from_frame(X), SHORT)
            self._measured[key] = {"seconds": secs, "first_call_s": first, "schema_given_s": given,
                                   "schema_inference_s": infer, "rows": rows, "n_queries": n_queries}
        return self._measured[key]

    def distill_synth(self, n: int, f: int) -> dict:
        """("observed", "perturb", "marginal"): n/4 observed rows and 3n/4 synthetic, n in all."""
        key = ("distill_synth", n, f)
        if key not in self._measured:
            ref = normal_table(n // 4, f, 2)
            oracle = Oracle(self.net(f), task="classification", verbose=0)
            synth = n - len(ref)
            first, secs, d = warm_timed(lambda: distill(oracle, ref, strategy=SYNTH, n=synth, random_state=0), SHORT)
            self._dsets[(n, f)] = d
            n_obs_train = int(((d.source == "observed") & ~d.is_holdout).sum())
            rng = np.random.default_rng(0)

            def draws():
                rng.integers(0, n_obs_train, size=(synth, f))
                rng.standard_normal((synth, f))

            s_secs, _ = timed(draws, SHORT)
            self._measured[key] = {"seconds": secs, "first_call_s": first, "rows": len(d), "synthetic": synth,
                                   "sampling_floor_s": s_secs,
                                   "by_strategy": {k: v["train"] + v["holdout"] for k, v in d.summary()["by_strategy"].items()}}
        return self._measured[key]

    def dset(self, n: int, f: int):
        if (n, f) not in self._dsets:
            self.distill_synth(n, f)
        if (n, f) not in self._dsets:  # measured before, set freed: build it again untimed
            ref = normal_table(n // 4, f, 2)
            oracle = Oracle(self.net(f), task="classification", verbose=0)
            self._dsets[(n, f)] = distill(oracle, ref, strategy=SYNTH, n=n - len(ref), random_state=0)
        return self._dsets[(n, f)]

    def stage_forward(self) -> None:
        n = self.cfg["rows"]
        fl = self.floor(n, 20)
        self.data["forward"] = fl
        size = f"{n:,} × 20"
        for b, s in fl["by_batch"].items():
            self.add("forward", size, None, s, f"floor, batch {int(b):,}",
                     "best" if int(b) == fl["best_batch"] else ("peer script's batch" if int(b) == 65536 else ""),
                     ratio=s / fl["best_s"])

    def stage_query(self) -> None:
        n = self.cfg["rows"]
        fl, q = self.floor(n, 20), self.query(n, 20)
        self.data["query"] = {**q, "floor": fl}
        size = f"{n:,} × 20"
        self.add("query", size, q["seconds"], fl["best_s"], f"floor (batch {fl['best_batch']:,})",
                 f"Oracle batch {q['batch_size']:,}; classes {q['class_share']}")
        self.add("query", size, q["seconds"], fl["at_65536_s"], "floor at 65,536 (peer script)")

    def stage_distill(self) -> None:
        n = self.cfg["rows"]
        fl, o, s = self.floor(n, 20), self.distill_observed(n, 20), self.distill_synth(n, 20)
        self.data["distill"] = {"observed": o, "observed_perturb_marginal": s, "floor": fl}
        size = f"{n:,} × 20"
        for vs, what in ((fl["best_s"], "floor (forward)"), (fl["at_65536_s"], "forward at 65,536 (peer script)")):
            self.add("distill observed", size, o["seconds"], vs, what,
                     f"whole distill call, schema read from the table ({o['schema_inference_s']:.3f} s of it alone); "
                     f"first call {o['first_call_s']:.3f} s")
            self.add("distill observed, schema given", size, o["schema_given_s"], vs, what, "as explain calls it")
        self.add("distill obs+perturb+marginal", size, s["seconds"], fl["best_s"], "floor (forward)",
                 f"{s['synthetic']:,} synthetic rows; by strategy {s['by_strategy']}")
        both = fl["best_s"] + s["sampling_floor_s"]
        self.add("distill obs+perturb+marginal", size, s["seconds"], both, "floor (forward + sampling)",
                 f"sampling floor alone {s['sampling_floor_s']:.3f} s = {s['sampling_floor_s'] / fl['best_s']:.1f}× "
                 f"the forward; first call {s['first_call_s']:.3f} s")
        self._dsets.pop((n, 20), None)  # the largest set, not needed again unless scaling asks
        gc.collect()

    # --- 2. tree and rules
    def tree(self, n: int, f: int, leaves: int) -> dict:
        key = ("tree", n, f)
        if key not in self._measured:
            from sklearn.tree import DecisionTreeClassifier

            d = self.dset(n, f)
            train, hold = d.train, d.holdout
            y_tr, y_ho = train.outputs.argmax(1), hold.outputs.argmax(1)
            ours_s, tree = timed(lambda: DecisionTree(max_leaf_nodes=leaves, random_state=0).fit(d))
            ours_agree = float(np.mean(np.asarray(tree.predict(hold.rows)) == np.asarray(d.classes)[y_ho]))
            Xtr = train.rows.to_numpy()
            peer_s, sk = timed(lambda: DecisionTreeClassifier(max_leaf_nodes=leaves, random_state=0).fit(Xtr, y_tr))
            peer_agree = float(np.mean(sk.predict(hold.rows.to_numpy()) == y_ho))
            self._measured[key] = {"rows": len(d), "train_rows": len(train), "holdout_rows": len(hold),
                                   "leaves": leaves, "pellucid_s": ours_s, "sklearn_s": peer_s,
                                   "pellucid_agreement": ours_agree, "sklearn_agreement": peer_agree}
            del self._dsets[(n, f)]
            gc.collect()
        return self._measured[key]

    def stage_tree(self) -> None:
        n, k = self.cfg["tree_rows"], self.cfg["tree_leaves"]
        r = self.tree(n, 20, k)
        self.data["tree"] = r
        self.add("tree", f"{n:,} × 20", r["pellucid_s"], r["sklearn_s"], "sklearn DecisionTreeClassifier",
                 f"{k} leaves, fit on {r['train_rows']:,} rows; held-out agreement pellucid "
                 f"{r['pellucid_agreement']:.4f} / sklearn {r['sklearn_agreement']:.4f}")

    def stage_rules(self) -> None:
        import imodels
        from sklearn.tree import DecisionTreeClassifier

        from pellucid.surrogates import SURROGATES

        net, Xtr, _ = self.peer
        n_obs, n_synth, k = self.cfg["rule_obs"], self.cfg["rule_synth"], self.cfg["rules"]
        ref = pd.DataFrame(Xtr[:n_obs], columns=columns(20))
        oracle = Oracle(net, task="classification", verbose=0)
        d = distill(oracle, ref, strategy=SYNTH, n=n_synth, random_state=0)
        train, hold = d.train, d.holdout
        X_tr, y_tr = train.rows.to_numpy(), train.outputs.argmax(1)
        X_ho, y_ho = hold.rows.to_numpy(), hold.outputs.argmax(1)
        classes = np.asarray(d.classes)
        pairs = {
            "figs": ("imodels FIGSClassifier", lambda: imodels.FIGSClassifier(max_rules=k, random_state=0)),
            "greedy_rule_list": ("imodels GreedyRuleListClassifier", lambda: imodels.GreedyRuleListClassifier(max_depth=k)),
            "exhaustive_rule_list": ("sklearn tree (no peer)",
                                     lambda: DecisionTreeClassifier(max_leaf_nodes=k, random_state=0)),
        }
        out = {"rows": len(d), "train_rows": len(train), "holdout_rows": len(hold), "rules": k, "by_surrogate": {}}
        size = f"{len(d):,} × 20"
        for name, (peer_name, factory) in pairs.items():
            rec: dict[str, Any] = {"peer": peer_name}
            try:
                cls = SURROGATES[name]
                ours_s, s = timed(lambda: cls(**{cls.size_param: k}).fit(d))
                rec.update(pellucid_s=ours_s, pellucid_rules=int(s.complexity()["n_rules"]),
                           pellucid_agreement=float(np.mean(np.asarray(s.predict(hold.rows)) == classes[y_ho])))
            except Exception as e:  # reported in the table, the suite goes on
                rec["pellucid_error"] = f"{type(e).__name__}: {e}"[:200]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    peer_s, m = timed(lambda: factory().fit(X_tr, y_tr))
                    pred = np.round(np.asarray(m.predict(X_ho), dtype=float)).astype(int)
                    rec.update(peer_s=peer_s, peer_agreement=float(np.mean(pred == y_ho)))
                except Exception as e:
                    rec["peer_error"] = f"{type(e).__name__}: {e}"[:200]
            out["by_surrogate"][name] = rec
            note = (f"{k} rules; agreement pellucid {rec.get('pellucid_agreement', float('nan')):.4f} "
                    f"({rec.get('pellucid_rules', '?')} rules) / peer {rec.get('peer_agreement', float('nan')):.4f}")
            if "pellucid_error" in rec or "peer_error" in rec:
                note += "; " + "; ".join(rec[e] for e in ("pellucid_error", "peer_error") if e in rec)
            self.add(f"rules: {name}", size, rec.get("pellucid_s"), rec.get("peer_s"), peer_name, note)
        self.data["rules"] = out

    # --- 3. IG
    def ig(self, n: int, with_captum: bool, with_floor: bool = True, steps: int = 50) -> dict:
        key = ("ig", n, with_captum)
        if key in self._measured:
            return self._measured[key]
        from pellucid.attribution import integrated_gradients

        net = torch.nn.Sequential(self.peer[0], torch.nn.Softmax(dim=-1)).eval()
        x = torch.from_numpy(normal_table(n, 20, 3).to_numpy())
        ours_s, ours = timed(lambda: integrated_gradients(net, x, target=1, n_steps=steps))
        rec = {"rows": n, "n_steps": steps, "pellucid_s": ours_s, "pellucid_max_abs_delta": float(np.abs(ours.delta).max())}
        if with_floor:
            from pellucid.attribution import integration_rule

            alphas, _ = integration_rule("gausslegendre", steps)
            alphas = torch.as_tensor(np.asarray(alphas), dtype=torch.float32)

            def floor():
                # every (row, step) point through the network and back once, 50,000 points a pass
                per = max(1, 50_000 // steps)
                for i in range(0, n, per):
                    xi = x[i:i + per]
                    pts = (alphas.view(-1, 1, 1) * xi.unsqueeze(0)).reshape(-1, xi.shape[1]).requires_grad_(True)
                    net(pts)[:, 1].sum().backward()

            rec["floor_s"] = timed(floor)[0]
        if with_captum:
            from captum.attr import IntegratedGradients

            def captum_run():
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    return IntegratedGradients(net).attribute(x, target=1, n_steps=steps, internal_batch_size=50_000,
                                                              return_convergence_delta=True)

            cap_s, (attr, delta) = timed(captum_run)
            rec.update(captum_s=cap_s, captum_max_abs_delta=float(delta.abs().max()),
                       max_abs_difference=float(np.abs(ours.encoded - attr.detach().numpy()).max()),
                       attribution_scale=float(attr.abs().max()))
        self._measured[key] = rec
        return rec

    def stage_ig(self) -> None:
        n = self.cfg["ig_rows"]
        r = self.ig(n, True)
        self.data["ig"] = r
        size = f"{n:,} × 20"
        self.add("ig", size, r["pellucid_s"], r["captum_s"], "captum IntegratedGradients",
                 f"50 steps; max |pellucid − captum| {r['max_abs_difference']:.1e} (scale {r['attribution_scale']:.1e}); "
                 f"max |delta| {r['pellucid_max_abs_delta']:.1e} / {r['captum_max_abs_delta']:.1e}")
        self.add("ig", size, r["pellucid_s"], r["floor_s"], "floor (forward+backward of rows×steps)")

    # --- 4. LIME
    def lime(self, n: int, peer_rows: int) -> dict:
        key = ("lime", n, peer_rows)
        if key in self._measured:
            return self._measured[key]
        from pellucid.surrogates.lime_local import lime

        net, Xtr, Xte = self.peer
        samples = 5000
        ref = pd.DataFrame(Xtr.astype(np.float64), columns=columns(20))
        X = np.concatenate([Xte, Xtr])[:n]
        rows = pd.DataFrame(X.astype(np.float64), columns=columns(20))
        oracle = Oracle(net, classes=[0, 1], output="logits", verbose=0)
        lime(oracle, rows.iloc[:5], ref, num_samples=samples)  # warm-up: first-call costs out of the timing
        ours_s, ours = timed(lambda: lime(oracle, rows, ref, num_samples=samples, random_state=0))
        pts = np.random.default_rng(4).standard_normal((n * samples, 20), dtype=np.float32)
        floor_s, _ = timed(partial(softmax_forward, net, pts, 8192))
        del pts
        rec = {"rows": n, "samples": samples, "pellucid_s": ours_s, "pellucid_ms_per_row": 1000 * ours_s / n,
               "floor_ms_per_row": 1000 * floor_s / n, "pellucid_local_r2_median": float(ours.local_r2.median())}
        if peer_rows:
            from lime.lime_tabular import LimeTabularExplainer

            proba = lambda a: softmax_forward(net, np.ascontiguousarray(a, dtype=np.float32), 65536)  # noqa: E731
            ex = LimeTabularExplainer(Xtr, mode="classification", random_state=0)
            targets = ours.target_index[:peer_rows]

            def run_lime():
                for i in range(peer_rows):
                    ex.explain_instance(X[i], proba, labels=(int(targets[i]),), num_features=20, num_samples=samples)

            t = time.perf_counter()
            run_lime()
            rec.update(lime_rows=peer_rows, lime_ms_per_row=1000 * (time.perf_counter() - t) / peer_rows)
        self._measured[key] = rec
        return rec

    def stage_lime(self) -> None:
        n, p = self.cfg["lime_rows"], self.cfg["lime_peer_rows"]
        r = self.lime(n, p)
        self.data["lime"] = r
        size = f"{n:,} rows × 20"
        self.add("lime, per row", size, r["pellucid_ms_per_row"] / 1000, r["lime_ms_per_row"] / 1000,
                 f"lime package ({p} rows)", f"5000 samples; {r['pellucid_ms_per_row']:.1f} vs {r['lime_ms_per_row']:.0f} ms per row; pellucid local R² median "
                 f"{r['pellucid_local_r2_median']:.3f}")
        self.add("lime, per row", size, r["pellucid_ms_per_row"] / 1000, r["floor_ms_per_row"] / 1000,
                 "floor (forward of the samples)", f"{r['floor_ms_per_row']:.1f} ms per row for 5000 samples")

    # --- 5. report
    def stage_report(self) -> None:
        from _tasks import _train_mlp
        from extraction_scale import make_table
        from report_build import preprocess

        from pellucid import explain
        from pellucid.reports import build

        n = self.cfg["report_rows"]
        X, y = make_table(n, 20, 0)
        pre = preprocess(X)
        net = _train_mlp(pre.transform(X), y, "classification", 0, epochs=3)
        info = check_not_constant(lambda a: torch.softmax(net(torch.as_tensor(a, dtype=torch.float32)), -1).detach().numpy(),
                                  pre.transform(X), "report MLP")
        self.data.setdefault("networks", {})["report_mlp"] = info
        X["y"] = y
        oracle = Oracle(net, preprocess=pre, task="classification", classes=[0, 1], verbose=0)
        work = Path(tempfile.mkdtemp(prefix="pellucid-suite-report-"))
        t = time.perf_counter()
        res = explain(oracle, X, target="y", out_dir=work / "run", card=ROOT / "docs" / "card-example.toml",
                      surrogates=["decision_tree"], n_boot=3, linear_view=False, attributions=["integrated_gradients"],
                      attribution_rows=100, random_state=0, verbose=0, meta={"title": f"suite: {n:,} rows"})
        t_all = time.perf_counter() - t
        t_build, _ = timed(lambda: build(res.payload, work / "again"))
        rec = {"rows": n, "features": 20, "explain_s": t_all, "report_step_s": res.timings["report"],
               "build_again_s": t_build, "html_mb": res.html_path.stat().st_size / 1e6,
               "json_mb": res.json_path.stat().st_size / 1e6, "timings": res.timings,
               "distillation_rows": int(res.payload["distillation"]["n_rows"])}
        self.data["report"] = rec
        size = f"{n:,} × 20 (mixed)"
        self.add("report step", size, rec["report_step_s"], t_all - rec["report_step_s"], "the analysis before it",
                 f"report.html {rec['html_mb']:.2f} MB, report.json {rec['json_mb']:.2f} MB; trimmed analysis "
                 "(decision trees, 3 bootstraps, IG)")
        self.add("report build again", size, t_build, None, "—", "reports.build on the finished payload")

    # --- 6. scaling
    def stage_scaling(self) -> None:
        c = self.cfg
        series: list[dict] = []

        def add_series(stage, axis, sizes, ours, other, other_name):
            series.append({"stage": stage, "axis": axis, "sizes": list(sizes), "pellucid_s": ours,
                           "vs": other_name, "vs_s": other, "slope": slope(sizes, ours),
                           "vs_slope": slope(sizes, other) if other else None})

        def guard(fn):
            try:
                return fn()
            except Exception as e:  # one failed point is recorded; the series goes on
                print(f"  scaling point failed: {type(e).__name__}: {e}", flush=True)
                return None

        for axis, points in (("rows (20 features)", [(n, 20) for n in c["scale_rows"]]),
                             (f"features ({c['scale_features_rows']:,} rows)",
                              [(c["scale_features_rows"], f) for f in c["scale_features"]])):
            xs = [n if axis.startswith("rows") else f for n, f in points]
            fl = [self.floor(n, f)["best_s"] for n, f in points]
            q = [guard(lambda n=n, f=f: self.query(n, f)["seconds"]) for n, f in points]
            do = [guard(lambda n=n, f=f: self.distill_observed(n, f)["seconds"]) for n, f in points]
            ds = [guard(lambda n=n, f=f: self.distill_synth(n, f)) for n, f in points]
            add_series("forward (floor)", axis, xs, fl, None, "")
            add_series("query", axis, xs, q, fl, "floor")
            add_series("distill observed", axis, xs, do, fl, "floor")
            add_series("distill obs+perturb+marginal", axis, xs, [d and d["seconds"] for d in ds],
                       [d and d["sampling_floor_s"] for d in ds], "sampling floor")
            tr = [guard(lambda n=n, f=f: self.tree(n, f, c["tree_leaves"])) for n, f in points]
            add_series("tree", axis, xs, [t and t["pellucid_s"] for t in tr], [t and t["sklearn_s"] for t in tr],
                       "sklearn tree")
            print(f"  scaling over {axis} done", flush=True)
        ig = [guard(lambda n=n: self.ig(n, n <= c["scale_ig_captum"], with_floor=True)) for n in c["scale_ig"]]
        add_series("ig", "rows (20 features, 50 steps)", c["scale_ig"], [r and r["pellucid_s"] for r in ig],
                   [r and r.get("captum_s") for r in ig], "captum")
        add_series("ig floor", "rows (20 features, 50 steps)", c["scale_ig"], [r and r["floor_s"] for r in ig], None, "")
        li = [guard(lambda n=n: self.lime(n, 0)) for n in c["scale_lime"]]
        add_series("lime", "rows (5000 samples)", c["scale_lime"], [r and r["pellucid_s"] for r in li],
                   [r and r["floor_ms_per_row"] * r["rows"] / 1000 for r in li], "forward floor")
        self.data["scaling"] = series

    # --- 7. external scripts
    def stage_external(self, stage: str) -> None:
        stem = EXTERNAL[stage]
        script = BENCH / f"{stem}.py"
        out = Path(self.args.out)
        if not script.exists():
            msg = f"benchmarks/{stem}.py does not exist yet: not run"
            print(f"  {msg}", flush=True)
            self.data[stage] = {"status": "missing", "script": f"benchmarks/{stem}.py"}
            self.add(stage, "—", None, None, "—", msg)
            return
        try:
            helptext = subprocess.run([sys.executable, "-W", "ignore", str(script), "--help"], capture_output=True,
                                      text=True, timeout=120, cwd=ROOT).stdout
        except subprocess.TimeoutExpired:
            helptext = ""
        cmd = [sys.executable, "-W", "ignore", str(script)]
        if self.args.quick and "--quick" in helptext:
            cmd.append("--quick")
        if "--out" in helptext:
            cmd += ["--out", str(out)]
        started = time.time()
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=self.args.external_timeout)
        secs = time.perf_counter() - t
        res_path = out / f"{stem}.json"
        rec: dict[str, Any] = {"command": " ".join(cmd[1:]), "returncode": proc.returncode, "seconds": secs,
                               "stdout_tail": proc.stdout[-2000:], "stderr_tail": proc.stderr[-2000:]}
        fresh = res_path.exists() and res_path.stat().st_mtime >= started - 1
        if fresh:
            rec["results"] = json.loads(res_path.read_text())
            md = out / f"{stem}.md"
            if md.exists() and md.stat().st_mtime >= started - 1:
                rec["markdown"] = md.read_text()
        self.data[stage] = rec
        if proc.returncode != 0:
            note = f"failed (exit {proc.returncode}): {proc.stderr.strip().splitlines()[-1:] if proc.stderr.strip() else ''}"
        elif not fresh:
            note = f"ran, but wrote no fresh {res_path}"
        else:
            note = "; ".join(f"{k} {_short(v)}" for k, v in _scalars(rec["results"])[:8])
        self.add(stage, "see note", secs, None, f"{stem}.py (whole run)", note)


def _scalars(d: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """Numbers and short strings of a results dict, one nesting level deep, for the table's note."""
    out = []
    if isinstance(d, dict):
        for k, v in d.items():
            name = f"{prefix}{k}"
            if isinstance(v, bool) or isinstance(v, (int, float)) or (isinstance(v, str) and len(v) < 40):
                out.append((name, v))
            elif isinstance(v, dict) and depth < 1:
                out += _scalars(v, name + ".", depth + 1)
    return out


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "—"
    if v >= 100:
        return f"{v:,.0f}{unit}"
    if v >= 1:
        return f"{v:.2f}{unit}"
    return f"{v:.4f}{unit}" if v >= 0.001 else f"{v:.2e}{unit}"


def markdown(suite: Suite, meta: dict, wall: float) -> str:
    m = meta["machine"]
    lines = [f"# pellucid benchmark suite{' (quick)' if meta['quick'] else ''}", "",
             f"{m['cpu']}, {m['cores']} cores, torch {m['torch']} on {m['torch_threads']} threads, "
             f"git {m['git_commit']}{' + local changes in ' + ', '.join(m['pellucid_files_modified']) if m['pellucid_files_modified'] else ''}; "
             f"suite wall time {wall:.0f} s; load average (1 min) {meta['load_average_start'][0]:.2f} at the start, "
             f"{meta['load_average_end'][0]:.2f} at the end. Seconds are the best of 3 under 1 s (forward/query/distill: under 5 s), one run above; ratio = pellucid / the "
             "comparison (below 1: pellucid is faster).", "",
             "| stage | size (rows × features) | pellucid s | vs | vs s | ratio | note |",
             "|---|---|---:|---|---:|---:|---|"]
    for r in suite.rows:
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}×"
        lines.append(f"| {r['stage']} | {r['size']} | {_num(r['pellucid_s'])} | {r['vs']} | {_num(r['vs_s'])} | "
                     f"{ratio} | {r['note']} |")
    if "scaling" in suite.data:
        lines += ["", "## Scaling (cost ∝ size^slope, least squares on log-log)", "",
                  "| stage | axis | sizes | pellucid s | slope | vs | vs s | vs slope |",
                  "|---|---|---|---|---:|---|---|---:|"]
        for s in suite.data["scaling"]:
            sizes = " / ".join(f"{x:,}" for x in s["sizes"])
            ours = " / ".join(_num(v) for v in s["pellucid_s"])
            vs = " / ".join(_num(v) for v in s["vs_s"]) if s["vs_s"] else "—"
            sl = "—" if s["slope"] is None else f"{s['slope']:.2f}"
            vsl = "—" if s["vs_slope"] is None else f"{s['vs_slope']:.2f}"
            lines.append(f"| {s['stage']} | {s['axis']} | {sizes} | {ours} | {sl} | {s['vs'] or '—'} | {vs} | {vsl} |")
    for stage in ("shapley", "reasons", "counterfactuals", "explain", "stream", "dask"):
        md = suite.data.get(stage, {}).get("markdown")
        if md:
            lines += ["", f"## {stage}: benchmarks/{EXTERNAL[stage]}.py", "", md.strip()]
    if meta["errors"]:
        lines += ["", "## Stages that failed", ""] + [f"- {k}: {v.splitlines()[-1]}" for k, v in meta["errors"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (about 3 minutes)")
    ap.add_argument("--only", nargs="+", choices=STAGES, metavar="STAGE", help=f"stages to run, of {', '.join(STAGES)}")
    ap.add_argument("--all", action="store_true", help="every stage, stream and dask included")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="torch threads (default: the machine's cores)")
    ap.add_argument("--external-timeout", type=int, default=1800, help="seconds allowed to streaming.py / dask_speedup.py")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    np.random.seed(0)
    cfg = QUICK if args.quick else FULL
    stages = list(STAGES) if args.all else (args.only or list(DEFAULT))
    stages = [s for s in STAGES if s in stages]  # the suite's order
    suite = Suite(cfg, args)
    meta = {"quick": args.quick, "stages": stages, "config": {k: v for k, v in cfg.items()},
            "machine": machine(args.threads), "stage_seconds": {}, "errors": {}, "load_average_start": os.getloadavg()}
    t0 = time.perf_counter()
    for stage in stages:
        print(f"[{time.perf_counter() - t0:6.1f}s] {stage} ...", flush=True)
        t = time.perf_counter()
        try:
            if stage in EXTERNAL:
                suite.stage_external(stage)
            else:
                getattr(suite, f"stage_{stage}")()
        except Exception:  # one failed stage is reported; the others still run
            meta["errors"][stage] = traceback.format_exc()
            suite.add(stage, "—", None, None, "—", "FAILED: " + traceback.format_exc().strip().splitlines()[-1][:200])
            print(traceback.format_exc(), flush=True)
        meta["stage_seconds"][stage] = time.perf_counter() - t
    if stages and set(stages) <= set(DEFAULT) and not args.only:
        for stage in EXTERNAL:  # said in the table even when not asked for
            script = BENCH / f"{EXTERNAL[stage]}.py"
            why = "not asked for (--all or --only frontier stream dask)" if script.exists() else \
                f"benchmarks/{EXTERNAL[stage]}.py does not exist yet"
            suite.add(stage, "—", None, None, "—", f"not run: {why}")
    wall = time.perf_counter() - t0
    meta["wall_seconds"] = wall
    meta["load_average_end"] = os.getloadavg()
    md = markdown(suite, meta, wall)
    data = {"meta": meta, "rows": suite.rows, **{k: v for k, v in suite.data.items()},
            "measured": {"|".join(map(str, k)): v for k, v in suite._measured.items()}}
    write_results(args.out, "suite", data, md)
    print(md)


if __name__ == "__main__":
    main()
