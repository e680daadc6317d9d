"""The agreement study: every catalog case x every method of diffkit.compare at the article's
point and at seeded random points, deep chains, and edge points chosen by rule, against the
30-digit reference."""

from __future__ import annotations

import math
import os
import re
import time
import zlib
from multiprocessing import get_all_start_methods, get_context

import numpy as np

import diffkit as dk
from diffkit import reference
from diffkit.experiments.catalog import (
    ACTIVATIONS,
    ARTICLE_DEPTH,
    TARGET,
    catalog,
    chain_rule_table,
    get,
)
from diffkit.ops import PRIMITIVES
from diffkit.tolerance import close

ORDER = 10  # the study's place in the report (diffkit.experiments.STUDIES)
FULL_POINTS = 5
QUICK_POINTS = 1
CHAIN_DEPTH = ARTICLE_DEPTH
# Deep chains, each at the article's point and DEEP_POINTS seeded random points (not in quick
# mode): the reference is linear in the graph size, so depth costs little.
DEEP_CHAINS = ("chain_tanh_30", "chain_sigmoid_100")
DEEP_POINTS = 1
METHODS = ("reverse", "forward", "symbolic", "central", "complex_step")
STATUSES = ("exact", "limit", "kink", "none", "undefined")
# A random point is kept only when every switch (relu's input, ...) is at least this far from
# its kink, so that finite differences never straddle one, and every value is below OVERFLOW.
KINK_MARGIN = 0.05
OVERFLOW = 1e6
MAX_DRAWS = 100_000

# ---- edge points: chosen by a rule on the case, never by how the comparison turns out ----

TAIL = 20.0
UNIT_TAIL = 700.0  # exp(709.78) overflows: a unit's input at +-700 is as far out as floats go
DOMAIN_GAP = 1e-6
EDGE_RULES = {
    "zero": "every variable 0 (relu, leaky_relu and elu exactly at their kink)",
    "input 0": "the case's default point with its first variable (the input) at 0",
    f"+{TAIL:g}": f"every variable at +{TAIL:g}",
    f"-{TAIL:g}": f"every variable at -{TAIL:g}",
    f"unit +{UNIT_TAIL:g}": (f"single-unit cases (sigmoid_neuron, chain_<activation>_1): input "
                             f"1, weight +{UNIT_TAIL:g}, the rest 0, so the unit's input is "
                             f"+{UNIT_TAIL:g}"),
    f"unit -{UNIT_TAIL:g}": f"the same with weight -{UNIT_TAIL:g}",
    "base 0": (f"the base of C = ({TARGET:g} - y)**2 exactly 0: chains whose activation is the "
               f"identity on positive inputs (relu, leaky_relu, elu) at x = {TARGET:g} and "
               "every weight 1; leaky_relu_wide with x = 1, first layer 1, second layer the "
               "identity, output weights 1"),
    "near 0": f"logistic maps: {DOMAIN_GAP:g} inside the lower end of their interval [0, 1]",
    "near 1": f"logistic maps: {DOMAIN_GAP:g} inside the upper end of their interval [0, 1]",
}
QUICK_EDGE_RULES = ("input 0",)  # quick mode: this rule on the catalog's cases only
# the activations that are the identity for x > 0: the switches among them
_IDENTITY_ON_POSITIVES = tuple(name for name in ACTIVATIONS if PRIMITIVES[name].kink)
_CHAIN_NAME = re.compile(r"chain_([a-z_]+)_(\d+)")


def safe_point(case, point) -> bool:
    """True when no switch of the traced graph is within KINK_MARGIN of its kink and every
    intermediate value is finite and below OVERFLOW in magnitude.

    Example:
        >>> case = get("chain_relu_2")
        >>> safe_point(case, (1.0, 1.0, 1.0)), safe_point(case, (1.0, -1.0, 1.0))
        (True, False)
    """
    traced = dk.trace(case.function, *point)
    for prim, vals, _, ans, _ in traced.entries[len(case.variables):]:
        if not (math.isfinite(ans) and abs(ans) < OVERFLOW):
            return False
        if prim.kink and prim.name != "maximum" and np.min(np.abs(vals[0])) < KINK_MARGIN:
            return False
        if prim.name == "maximum" and abs(vals[0] - vals[1]) < KINK_MARGIN:
            return False
    return math.isfinite(traced.value)


def random_points(case, count: int, seed: int = 0) -> list:
    """Return `count` points drawn uniformly from case.domain that pass `safe_point`.

    The generator is seeded by (seed, the case's name), so adding a case changes no other.

    Example:
        >>> random_points(get("logistic_map_4"), 1)
        [(0.2572029097312758,)]
    """
    rng = np.random.default_rng([seed, zlib.crc32(case.name.encode())])
    low, high = case.domain
    points = []
    for _ in range(MAX_DRAWS):
        if len(points) == count:
            return points
        point = tuple(float(v) for v in rng.uniform(low, high, size=len(case.variables)))
        if safe_point(case, point):
            points.append(point)
    raise RuntimeError(f"{case.name}: found {len(points)} of {count} safe points")


def edge_cases() -> list:
    """Return the cases the edge points are taken on: the catalog, then the single-unit chains
    chain_<activation>_1.

    Example:
        >>> [c.name for c in edge_cases()][-1]
        'chain_silu_1'
    """
    return catalog(chain_depth=CHAIN_DEPTH) + [get(f"chain_{a}_1") for a in ACTIVATIONS]


def edge_points(case, rules=None) -> list:
    """Return the edge points of `case` as (rule, point) pairs, by the rules of EDGE_RULES that
    apply to it (only those named in `rules`, when given); a point that an earlier rule already
    gave is not repeated.

    Example:
        >>> edge_points(get("chain_relu_1"))[:2]
        [('zero', (0.0, 0.0)), ('input 0', (0.0, 1.0))]
    """
    n = len(case.variables)
    found = [
        ("zero", (0.0,) * n),
        ("input 0", (0.0,) + tuple(case.point[1:])),
        (f"+{TAIL:g}", (TAIL,) * n),
        (f"-{TAIL:g}", (-TAIL,) * n),
    ]
    match = _CHAIN_NAME.fullmatch(case.name)
    activation, depth = (match.group(1), int(match.group(2))) if match else (None, 0)
    if case.name == "sigmoid_neuron" or depth == 1:
        for tail in (UNIT_TAIL, -UNIT_TAIL):
            found.append((f"unit {tail:+g}", (1.0, tail) + (0.0,) * (n - 2)))
    if activation in _IDENTITY_ON_POSITIVES:
        found.append(("base 0", (TARGET,) + (1.0,) * (n - 1)))
    if case.name == "leaky_relu_wide":
        identity = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
        weights = (1.0,) * 3 + identity + (1.0,) * 3
        found.append(("base 0", (1.0,) + weights))
    if case.name.startswith("logistic_map_"):
        found += [("near 0", (DOMAIN_GAP,)), ("near 1", (1.0 - DOMAIN_GAP,))]
    seen, out = set(), []
    for rule, point in found:
        if point not in seen and (rules is None or rule in rules):
            seen.add(point)
            out.append((rule, point))
    return out


# ---- one comparison ----


def evaluate(name: str, point: tuple) -> dict:
    """Compare every method on case `name` at `point`; return the Comparison's numbers: the
    verdict, the reference (its gradient, digits proven, status counts, kinks) and per method
    its errors, the entries proven wrong and whether it applied (with its note).

    Example:
        >>> evaluate("sum_product", (1.0, 1.0, 1.0))["agree"]
        True
    """
    case = get(name)
    comparison = dk.compare(case.function, *point, names=case.variables)
    full = comparison.to_dict()
    return {
        "point": list(point),
        "agree": full["agree"],
        "reference": full["reference"],
        "digits": _digits(comparison),
        "value": comparison.value,
        "finite": math.isfinite(comparison.value),
        "status": {s: sum(1 for t in comparison.status if t == s) for s in STATUSES},
        "reference_gradient": list(full["gradient"]["symbolic"].values()),
        "kinks": [
            {"node": k.node, "left": list(k.left), "right": list(k.right),
             "differentiable": k.differentiable}
            for k in comparison.kinks
        ],
        "methods": {
            m: {key: full["methods"][m][key] for key in
                ("max_abs_error", "max_rel_error", "agree", "applicable", "note", "wrong")}
            for m in METHODS
        },
        # the Comparison's own notes, not to_dict's remarks on writing nan as null
        "notes": list(comparison.notes),
        "timing": full["timing"],
    }


def _digits(comparison):
    """Digits the reference proves, capped at reference.DIGITS (its target); None without it."""
    if comparison.reference != "symbolic" or math.isnan(comparison.digits):
        return None
    return float(min(comparison.digits, reference.DIGITS))


def _evaluate_task(task):
    return evaluate(*task)


def _worst(values):
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return max(finite) if finite else None


def _fewest(values):
    known = [v for v in values if v is not None]
    return min(known) if known else None


def _without_timing(evaluation):
    return {k: v for k, v in evaluation.items() if k != "timing"}


def summarize(name: str, evaluations: list) -> dict:
    """Fold one case's evaluations into per-method worst errors and one verdict.

    Example:
        >>> summarize("c", [evaluate("sum_product", (1.0, 1.0, 1.0))])["agree"]
        True
    """
    methods = {}
    for m in METHODS:
        entries = [e["methods"][m] for e in evaluations]
        used = [x for x in entries if x["applicable"]]
        methods[m] = {
            "max_abs_error": _worst(x["max_abs_error"] for x in used),
            "max_rel_error": _worst(x["max_rel_error"] for x in used),
            "agree": all(x["agree"] for x in used),
            "applicable": bool(used),
            "applicable_points": len(used),
            "notes": sorted({x["note"] for x in entries if x["note"]}),
        }
    methods["symbolic"]["reference_points"] = sum(e["reference"] == "symbolic"
                                                  for e in evaluations)
    return {
        "name": name,
        "point": evaluations[0]["point"],
        "points": len(evaluations),
        "references": sorted({e["reference"] for e in evaluations}),
        "digits": _fewest(e["digits"] for e in evaluations),
        "kinks": sum(len(e["kinks"]) for e in evaluations),
        "methods": methods,
        "agree": all(e["agree"] for e in evaluations),
        "evaluations": [_without_timing(e) for e in evaluations],
    }


def reason(evaluation) -> str:
    """Return why an evaluation disagrees, in one line: the methods proven wrong (entries and
    error), reverse mode not applying, and the comparison's notes; "" when it agrees.

    Example:
        >>> reason(evaluate("sum_product", (1.0, 1.0, 1.0)))
        ''
    """
    if evaluation["agree"]:
        return ""
    parts = []
    for m, entry in evaluation["methods"].items():
        if entry["wrong"]:
            parts.append(f"{m} wrong in d/d({', '.join(entry['wrong'])}), max abs error "
                         f"{_short(entry['max_abs_error'])}")
    reverse_mode = evaluation["methods"]["reverse"]
    if not reverse_mode["applicable"]:
        parts.append(f"reverse mode did not run: {reverse_mode['note']}")
    parts += evaluation["notes"]
    return "; ".join(parts) or "no method was proven wrong, yet the verdict is disagree"


def _short(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3g}"


def summarize_edges(records: list) -> dict:
    """Fold the edge evaluations (each with its `case` and `rule`) into counts: comparisons,
    how many agree, the disagreements with their reason, the points where f is not finite,
    the statuses of all entries, and per method how often it did not apply or was blamed.

    Example:
        >>> e = evaluate("chain_relu_1", (0.0, 1.0))
        >>> summarize_edges([{"case": "chain_relu_1", "rule": "input 0", **e}])["agreed"]
        1
    """
    def where(r):
        return {"case": r["case"], "rule": r["rule"], "point": r["point"]}

    return {
        "comparisons": len(records),
        "agreed": sum(r["agree"] for r in records),
        "all_agree": all(r["agree"] for r in records),
        "disagreements": [{**where(r), "reason": reason(r)} for r in records if not r["agree"]],
        "not_finite": [where(r) for r in records if not r["finite"]],
        "status": {s: sum(r["status"][s] for r in records) for s in STATUSES},
        "kinks": sum(len(r["kinks"]) > 0 for r in records),
        "not_applicable": {m: sum(not r["methods"][m]["applicable"] for r in records)
                           for m in METHODS},
        "blamed": {m: sum(bool(r["methods"][m]["wrong"]) for r in records) for m in METHODS},
        "references": {ref: sum(r["reference"] == ref for r in records)
                       for ref in ("symbolic", "consensus")},
    }


def expected_checks(cases) -> list:
    """diffkit's reverse-mode value and gradient against the values the article gives.

    Example:
        >>> expected_checks([get("sigmoid_neuron")])[0]["matches"]
        True
    """
    rows = []
    for case in cases:
        if case.expected is None:
            continue
        argnums = tuple(range(len(case.variables)))
        value, gradient = dk.value_and_grad(case.function, argnums=argnums)(*case.point)
        ok = close(value, case.expected.value, rtol=1e-12)
        ok = ok and close(gradient, case.expected.gradient, rtol=1e-9, atol=1e-15)
        rows.append({
            "name": case.name, "expected_value": case.expected.value,
            "expected_gradient": list(case.expected.gradient), "value": value,
            "gradient": list(gradient), "matches": bool(ok),
        })
    return rows


def chain_rule_tables() -> dict:
    """The article's step-by-step tables, from the tape: sigmoid_neuron and xor_graph.

    Example:
        >>> chain_rule_tables()["sigmoid_neuron"]["gradient"]["w"]
        0.25
    """
    tables = {}
    for name in ("sigmoid_neuron", "xor_graph"):
        steps, paths, gradient = chain_rule_table(get(name))
        tables[name] = {
            "steps": [
                {"name": s.name, "operation": s.operation, "value": s.value,
                 "local": [list(pair) for pair in s.local]}
                for s in steps
            ],
            "paths": {
                k: [{"nodes": list(p.nodes), "factors": list(p.factors), "product": p.product}
                    for p in found]
                for k, found in paths.items()
            },
            "gradient": gradient,
        }
    return tables


def _workers(requested):
    if requested is not None:
        return requested
    return max(1, min(2, os.cpu_count() or 1))


def _evaluate_all(tasks, jobs, progress, first=()):
    """Evaluate every (name, point) task, the positions in `first` first (the slow ones, so
    that no worker is left with them at the end); results in the order of `tasks`."""
    order = list(first) + [k for k in range(len(tasks)) if k not in set(first)]
    results = [None] * len(tasks)
    if jobs == 1 or len(tasks) <= 1 or "fork" not in get_all_start_methods():
        mapped = map(_evaluate_task, (tasks[k] for k in order))
        pool = None
    else:
        # fork, not spawn: spawn re-imports the caller's __main__, which a script may not guard.
        pool = get_context("fork").Pool(jobs)
        mapped = pool.imap(_evaluate_task, [tasks[k] for k in order])
    try:
        for done, result in enumerate(mapped):
            results[order[done]] = result
            if progress and ((done + 1) % 20 == 0 or done + 1 == len(tasks)):
                progress(f"agreement: {done + 1}/{len(tasks)} comparisons")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return results


def run(quick: bool = False, seeds: int | None = None, progress=None, workers=None,
        only=None) -> dict:
    """Run the study: every catalog case (chains at the article's depth 10) at its point and
    `seeds` random points (default 5, quick 1); the deep chains at their point and DEEP_POINTS
    random points (not in quick mode); every edge point of EDGE_RULES on `edge_cases()`
    (quick: QUICK_EDGE_RULES on the catalog).

    `only` restricts it to some case names (catalog, deep chains or single-unit chains);
    `workers` processes compare side by side (default up to 2); results do not depend on it.

    Example:
        >>> result = run(quick=True, seeds=1, workers=1, only=("sum_product",))
        >>> result["all_agree"], result["cases"][0]["points"], result["edges"]["comparisons"]
        (True, 2, 1)
    """
    count = seeds if seeds is not None else (QUICK_POINTS if quick else FULL_POINTS)
    deep = () if quick else DEEP_CHAINS
    wanted = (lambda name: True) if only is None else (lambda name: name in only)
    planned = [(case, count) for case in catalog(chain_depth=CHAIN_DEPTH) if wanted(case.name)]
    planned += [(get(name), DEEP_POINTS) for name in deep if wanted(name)]
    tasks, slow = [], []
    for case, n in planned:
        if case.name in DEEP_CHAINS:
            slow += range(len(tasks), len(tasks) + n + 1)
        tasks += [(case.name, point) for point in [case.point] + random_points(case, n)]
    rules = QUICK_EDGE_RULES if quick else None
    on = catalog(chain_depth=CHAIN_DEPTH) if quick else edge_cases()
    edges = [(case.name, rule, point) for case in on if wanted(case.name)
             for rule, point in edge_points(case, rules)]
    tasks += [(name, point) for name, _, point in edges]
    started = time.perf_counter()
    jobs = _workers(workers)
    results = _evaluate_all(tasks, jobs, progress, slow)
    method_seconds = dict.fromkeys(METHODS, 0.0)
    for e in results:
        for m in METHODS:
            method_seconds[m] += e["timing"].get(m, 0.0)
    summaries, at = [], 0
    for case, n in planned:
        summaries.append(summarize(case.name, results[at : at + n + 1]))
        at += n + 1
    records = [{"case": name, "rule": rule, **_without_timing(e)}
               for (name, rule, _), e in zip(edges, results[at:])]
    slowest = max(zip(tasks, results), key=lambda pair: sum(pair[1]["timing"].values()),
                  default=None)
    return {
        "parameters": {"quick": quick, "seeds": count},
        "methods": list(METHODS),
        "random_points": count,
        "chain_depth": CHAIN_DEPTH,
        "article_depth": ARTICLE_DEPTH,
        "deep_chains": [name for name in deep if wanted(name)],
        "deep_random_points": DEEP_POINTS,
        "kink_margin": KINK_MARGIN,
        "reference_digits": reference.DIGITS,
        "cases": summaries,
        "all_agree": all(s["agree"] for s in summaries),
        "edges": {
            "rules": {rule: EDGE_RULES[rule] for rule in (rules or EDGE_RULES)},
            "points": records,
            **summarize_edges(records),
        },
        "expected": expected_checks(catalog(chain_depth=CHAIN_DEPTH)),
        "chain_rule": chain_rule_tables(),
        "timing": {
            "seconds": time.perf_counter() - started,
            "workers": jobs,
            "method_seconds": method_seconds,
            "slowest": None if slowest is None else {
                "case": slowest[0][0], "seconds": sum(slowest[1]["timing"].values())},
        },
    }
