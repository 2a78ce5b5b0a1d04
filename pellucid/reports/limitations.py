"""Limitations the run found in its own explanations.

A model-risk reviewer's first question about an explanation is where it can't be trusted.
:func:`find_limitations` reads a payload and lists what the run itself measured against its
explanations: regions where the surrogate disagrees with the network, rules that do not come back
when the surrogate is refitted, rules learned on synthetic rows the data never holds, synthetic rows
far from the data, attribution methods that rank features differently or fail their checks, local
explanations that do not fit the network, intervals too wide to read, and a recommendation the
validation rows could not tell from several others. Each finding carries its
numbers; the thresholds are the constants below, and the report states them.

Findings are made from the payload alone, so that ``report.json`` re-rendered later gives the same
list, and a reader can check each against the numbers elsewhere in the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..fidelity.frontier import entry_name
from ..fidelity.intervals import wilson

#: A disagreement region is listed when its share of disagreements is at least this many times
#: the overall share.
REGION_FACTOR = 2.0
#: A rule is unstable when fewer than this share of bootstrap refits contain a matching rule.
UNSTABLE_RULE = 0.5
#: A rule is learned on synthetic rows when its share of the held-out observed rows is below
#: this fraction of its share of the training rows (and it covers at least ``MIN_SUPPORT`` of them).
SYNTHETIC_RULE_RATIO = 0.25
MIN_SUPPORT = 0.02
#: A strategy's synthetic rows are flagged when more than this share lie outside the data.
OUTSIDE_SHARE = 0.10
#: Methods disagree on a feature when one ranks it in its top ``TOP`` and another ranks it in
#: the lower half of the features.
TOP = 3
#: A LIME explanation fits badly below this local R².
LOCAL_R2 = 0.5
#: An agreement interval wider than this (in share points) is too wide to rank surrogates.
WIDE_INTERVAL = 0.06
#: Other entries whose validation agreement must lie inside the recommended one's interval for
#: the choice to be flagged, and how many of them the finding lists.
CLOSE_ENTRIES = 3
CLOSE_LISTED = 8


def find_limitations(payload: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The limitations a payload's own numbers show.

    Parameters
    ----------
    payload : dict
        As built by :func:`pellucid.reports.build_payload` (or read from ``report.json``).

    Returns
    -------
    list of dict
        One entry per finding: ``kind`` (``low_fidelity_region``, ``unstable_rules``,
        ``synthetic_rules``, ``extrapolation``, ``method_disagreement``,
        ``attribution_checks``, ``local_fit``, ``wide_interval``, ``close_choice``, ``group_fidelity``,
        ``protected_feature``),
        ``title`` (one line),
        ``detail`` (what it means for a reader) and ``items`` (the evidence: dicts of plain
        values). Empty when the run found nothing to flag.
    """
    surrogates = list(payload.get("surrogates") or [])
    rec = payload.get("recommended")
    best = surrogates[rec] if isinstance(rec, int) and 0 <= rec < len(surrogates) else None
    out: list[dict[str, Any]] = []
    for check in (_regions, _unstable, _synthetic_rules, _extrapolation, _methods, _checks, _local, _interval,
                  _close_choice, _groups, _protected):
        found = check(payload, best)
        if found:
            out.append(found)
    return out


def _finding(kind: str, title: str, detail: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    return {"kind": kind, "title": title, "detail": detail, "items": [dict(i) for i in items]}


def _regions(p: Mapping[str, Any], best: Any) -> dict | None:
    dis = p.get("disagreement") or {}
    overall = dis.get("share")
    if not overall:
        return None
    regression = dis.get("task") == "regression"
    items = [
        {"region": g.get("text"), "rows": g.get("n_rows"), "share": g.get("share"),
         "share_of_disagreements": g.get("share_of_disagreements")}
        for g in dis.get("regions") or []
        if g.get("share") is not None and g["share"] >= REGION_FACTOR * overall
    ]
    if not items:
        return None
    what = "is far from the network's output" if regression else "gives another answer than the network"
    return _finding(
        "low_fidelity_region",
        f"{len(items)} region{'s' if len(items) > 1 else ''} where the surrogate {what} at least "
        f"{REGION_FACTOR:g}× as often as overall ({100 * overall:.1f}%)",
        "Inside these regions the rules describe the network less well than the headline fidelity says; "
        "decisions there should be read from the network (or its local explanations), not from the rules.",
        items,
    )


def _unstable(p: Mapping[str, Any], best: Any) -> dict | None:
    st = (best or {}).get("stability") or {}
    items = [
        {"rule": r.get("text"), "refits_with_rule": r.get("share")}
        for r in st.get("rules") or []
        if r.get("share") is not None and r["share"] < UNSTABLE_RULE
    ]
    if not items:
        return None
    return _finding(
        "unstable_rules",
        f"{len(items)} of the recommended surrogate's rules reappear in fewer than {100 * UNSTABLE_RULE:.0f}% "
        f"of {st.get('n_boot')} refits on resampled rows",
        "These rules depend on which rows the surrogate happened to learn from: their thresholds or "
        "conditions may differ in another run, so they should not be quoted as the model's logic.",
        items,
    )


def _synthetic_rules(p: Mapping[str, Any], best: Any) -> dict | None:
    if not best or (best.get("fidelity") or {}).get("rows") != "holdout":
        return None
    items = []
    for i, r in enumerate(best.get("rules") or []):
        sup, cov = r.get("support"), r.get("coverage")
        if sup is None or cov is None or sup < MIN_SUPPORT:
            continue
        if cov < SYNTHETIC_RULE_RATIO * sup:
            items.append({"rule": f"R{i + 1}", "text": r.get("text"), "train_support": sup, "holdout_coverage": cov})
    if not items:
        return None
    return _finding(
        "synthetic_rules",
        f"{len(items)} rule{'s' if len(items) > 1 else ''} cover{'' if len(items) > 1 else 's'} many training rows "
        f"but few held-out observed rows",
        "The training rows include synthetic ones; a rule whose held-out coverage is under "
        f"{100 * SYNTHETIC_RULE_RATIO:.0f}% of its training support was learned mostly where the data has "
        "few real cases, and describes the network's extrapolation there.",
        items,
    )


def _extrapolation(p: Mapping[str, Any], best: Any) -> dict | None:
    ex = (p.get("distillation") or {}).get("extrapolation") or {}
    items = [
        {"strategy": s, "outside": v.get("outside"), "median_distance_ratio": v.get("median_ratio"), "rows_measured": v.get("n")}
        for s, v in (ex.get("strategies") or {}).items()
        if v.get("outside") is not None and v["outside"] > OUTSIDE_SHARE
    ]
    if not items:
        return None
    q = ex.get("quantile", 0.99)
    return _finding(
        "extrapolation",
        "Synthetic rows outside the data: " + ", ".join(f"{100 * i['outside']:.0f}% of {i['strategy']} rows" for i in items),
        f"These rows lie farther from every observed row than {100 * q:.0f}% of observed rows lie from their nearest "
        "neighbour. The network's answers there are extrapolations; surrogates that learn from them can state "
        "rules about combinations of values the data never holds.",
        items,
    )


def _methods(p: Mapping[str, Any], best: Any) -> dict | None:
    methods = [m for m in ((p.get("attributions") or {}).get("methods") or []) if m.get("importance")]
    if len(methods) < 2:
        return None
    feats = sorted(set().union(*(m["importance"] for m in methods)))
    half = len(feats) / 2
    ranks = {}
    for m in methods:
        imp = m["importance"]
        order = sorted(feats, key=lambda f: -(imp.get(f) or 0.0))
        ranks[m.get("label") or m["name"]] = {f: i + 1 for i, f in enumerate(order)}
    items = []
    for f in feats:
        r = {name: rk[f] for name, rk in ranks.items()}
        top = [n for n, v in r.items() if v <= TOP]
        low = [n for n, v in r.items() if v > half]
        if top and low:
            items.append({"feature": f, "ranks": r, "top_by": top, "low_by": low})
    if not items:
        return None
    return _finding(
        "method_disagreement",
        f"Attribution methods disagree on {len(items)} feature{'s' if len(items) > 1 else ''}: "
        + ", ".join(i["feature"] for i in items[:6]) + ("…" if len(items) > 6 else ""),
        f"One method ranks each of these among the {TOP} most important features and another in the lower half. "
        "Methods answer different questions (local slope, path integral, removal), so the importance of these "
        "features depends on the question asked; do not cite one method's ranking alone.",
        items,
    )


def _checks(p: Mapping[str, Any], best: Any) -> dict | None:
    items = []
    for m in (p.get("attributions") or {}).get("methods") or []:
        ev = m.get("evaluation") or {}
        san = ev.get("sanity") or {}
        why = []
        if san and san.get("passed") is False:
            why.append("failed the randomised-network check")
        d, rd = ev.get("deletion_auc"), ev.get("random_deletion_auc")
        if d is not None and rd is not None and d >= rd:
            why.append("deleting its top features first lowers the output no faster than a random order")
        if why:
            items.append({"method": m.get("label") or m.get("name"), "why": "; ".join(why)})
    if not items:
        return None
    return _finding(
        "attribution_checks",
        f"{len(items)} attribution method{'s' if len(items) > 1 else ''} failed a check",
        "A method that fails these checks is not shown to explain this network; its rankings are listed for "
        "completeness only.",
        items,
    )


def _local(p: Mapping[str, Any], best: Any) -> dict | None:
    items = []
    for r in (p.get("local") or {}).get("rows") or []:
        lm = r.get("lime") or {}
        an = r.get("anchor") or {}
        why = []
        if lm.get("local_r2") is not None and lm["local_r2"] < LOCAL_R2:
            why.append(f"LIME local R² {lm['local_r2']:.2f}")
        if an and an.get("success") is False:
            why.append("anchor below its precision target")
        if why:
            items.append({"row": r.get("row"), "why": "; ".join(why)})
    if not items:
        return None
    return _finding(
        "local_fit",
        f"{len(items)} single-decision explanation{'s' if len(items) > 1 else ''} fit the network poorly",
        f"Below a local R² of {LOCAL_R2:g} the linear model around the row does not follow the network there, so its "
        "reasons are unreliable; the network is not locally linear at that row.",
        items,
    )


def _groups(p: Mapping[str, Any], best: Any) -> dict | None:
    groups = (p.get("decisions") or {}).get("groups") or {}
    items = [{"column": g.get("column"), "group": g.get("group"), "rows": g.get("rows"), "agreement": g.get("agreement"),
              "agreement_ci": g.get("agreement_ci"), "p": g.get("agreement_p")}
             for g in groups.get("table") or [] if g.get("lower_fidelity")]
    if not items:
        return None
    return _finding(
        "group_fidelity",
        f"The recommended surrogate is less faithful in {len(items)} group{'s' if len(items) > 1 else ''}",
        "Its agreement with the network there is significantly lower than on the other rows "
        f"({groups.get('test')}): its rules describe the network less well for these people, and a reader "
        "should not rely on them there without checking the network's own answers.",
        items,
    )


def _protected(p: Mapping[str, Any], best: Any) -> dict | None:
    dec = p.get("decisions") or {}
    protected = set(dec.get("protected") or [])
    if not protected:
        return None
    items = []
    for rule in (best or {}).get("rules") or []:
        used = sorted({c.get("feature") for c in rule.get("conditions") or []} & protected)
        if used:
            items.append({"feature": ", ".join(used), "rule": rule.get("text")})
    counts = {e.get("feature"): e for e in ((dec.get("reasons") or {}).get("any_reason") or [])}
    first = {e.get("feature"): e for e in ((dec.get("reasons") or {}).get("first_reason") or [])}
    for f in sorted(protected & set(counts)):
        items.append({"feature": f, "reason_rows": counts[f].get("rows"),
                      "first_reason_rows": (first.get(f) or {}).get("rows", 0)})
    if not items:
        return None
    return _finding(
        "protected_feature",
        f"Rules or principal reasons use a protected attribute ({', '.join(sorted(protected))})",
        "The card or the run marks these attributes as protected. Where a rule of the recommended surrogate tests one, "
        "or a decision's principal reasons include one, the network's decisions depend on it there; a reviewer should "
        "decide whether that is lawful and intended before the model is used.",
        items,
    )


def _close_choice(p: Mapping[str, Any], best: Any) -> dict | None:
    """Entries within the rule budget whose validation agreement lies inside the recommended
    entry's interval on the validation rows: the rows that chose could not tell them apart."""
    front = p.get("frontier") or {}
    n, sel = front.get("validation_rows"), front.get("selected")
    entries = front.get("entries") or []
    if not n or not isinstance(sel, int) or not 0 <= sel < len(entries) or front.get("task") != "classification":
        return None
    chosen = entries[sel]
    v = chosen.get("validation_score")
    budget = p.get("recommended_max_rules")
    if v is None or budget is None:
        return None
    ci = wilson(v * n, n)
    close, seen = [], set()
    for i, e in enumerate(entries):
        if i == sel or e.get("validation_score") is None or e.get("n_rules") is None:
            continue
        if e["n_rules"] > budget or e["validation_score"] < ci[0]:
            continue
        # The same fit at a larger size budget (a learner that stopped early) is one rival.
        key = (e.get("candidate"), e.get("training"), e["n_rules"], e.get("n_conditions"), e["validation_score"],
               e.get("score"))
        if key not in seen:
            seen.add(key)
            close.append(e)
    if len(close) < CLOSE_ENTRIES:
        return None
    close.sort(key=lambda e: (-e["validation_score"], e["n_rules"]))
    rows = int(math.ceil(round((v - min(e["validation_score"] for e in close)) * n, 6)))
    return _finding(
        "close_choice",
        f"{len(close)} other fits within {budget} rules were as good on the {n:,} validation rows, within its interval",
        f"The recommendation was chosen by agreement on {n:,} observed training rows held back from every fit "
        f"({100 * v:.1f}%, 95% interval {100 * ci[0]:.1f}%–{100 * ci[1]:.1f}%); the fits listed reached at least "
        f"the interval's lower end, so the choice among them rests on at most {rows:,} of those rows"
        + (f" ({CLOSE_LISTED} of them are listed, the best on validation first)" if len(close) > CLOSE_LISTED else "")
        + ". Their held-out agreement is in the frontier's table; more rows held back for validation would "
        "separate them.",
        [{"entry": entry_name(e.get("candidate"), e.get("size"), e.get("training")), "n_rules": e["n_rules"], "validation": e["validation_score"],
          "held_out": e.get("score")} for e in close[:CLOSE_LISTED]],
    )


def _interval(p: Mapping[str, Any], best: Any) -> dict | None:
    f = (best or {}).get("fidelity") or {}
    ci = f.get("agreement_ci")
    if not ci or ci[0] is None or ci[1] is None or ci[1] - ci[0] <= WIDE_INTERVAL:
        return None
    return _finding(
        "wide_interval",
        f"The headline agreement's interval is {100 * (ci[1] - ci[0]):.1f} points wide",
        f"It was measured on {f.get('n')} rows; surrogates whose agreement differs by less than this cannot be ranked. "
        "More held-out rows narrow it.",
        [{"agreement": f.get("agreement"), "low": ci[0], "high": ci[1], "rows": f.get("n")}],
    )



#: What each check looks at, as the report lists them (with the thresholds above).
CHECKS = (
    f"regions where the recommended surrogate disagrees with the network at least {REGION_FACTOR:g}× as often as overall",
    f"its rules that fewer than {100 * UNSTABLE_RULE:.0f}% of bootstrap refits reproduce",
    f"its rules whose held-out coverage is under {100 * SYNTHETIC_RULE_RATIO:.0f}% of their training support",
    f"synthetic strategies with more than {100 * OUTSIDE_SHARE:.0f}% of rows outside the observed data",
    f"features that one attribution method ranks in its top {TOP} and another in the lower half",
    "attribution methods that fail the randomised-network check or do worse than a random deletion order",
    f"single-decision explanations with a local R² under {LOCAL_R2:g} or an anchor below its precision target",
    f"a headline agreement interval wider than {100 * WIDE_INTERVAL:.0f} points",
    f"{CLOSE_ENTRIES} or more entries within the rule budget whose validation agreement is inside the recommended "
    "entry's 95% interval on the validation rows",
)

#: Evidence keys -> (column heading, format: text, code (rule text), pct, count, fixed or value).
COLUMNS = {
    "region": ("Region", "code"),
    "rows": ("Rows", "count"),
    "share": ("Disagreement share", "pct"),
    "share_of_disagreements": ("Of all disagreements", "pct"),
    "rule": ("Rule", "text"),
    "text": ("Rule", "code"),
    "refits_with_rule": ("Refits with the rule", "pct"),
    "train_support": ("Training support", "pct"),
    "holdout_coverage": ("Held-out coverage", "pct"),
    "strategy": ("Strategy", "text"),
    "outside": ("Rows outside the data", "pct"),
    "median_distance_ratio": ("Median distance / observed", "fixed"),
    "rows_measured": ("Rows measured", "count"),
    "feature": ("Feature", "text"),
    "ranks": ("Rank by method", "text"),
    "top_by": ("Top by", "text"),
    "low_by": ("Low by", "text"),
    "method": ("Method", "text"),
    "why": ("Why", "text"),
    "row": ("Row", "text"),
    "agreement": ("Agreement", "pct"),
    "entry": ("Entry", "text"),
    "n_rules": ("Rules", "count"),
    "validation": ("Validation agreement", "pct"),
    "held_out": ("Held-out agreement", "pct"),
    "low": ("Interval low", "pct"),
    "high": ("Interval high", "pct"),
}
