"""The agreement study: every catalog case x every method of diffkit.compare, at the article's
point and at seeded random points away from kinks, against the high-precision reference."""

from __future__ import annotations

import math
import os
import time
import zlib
from multiprocessing import get_all_start_methods, get_context

import numpy as np

import diffkit as dk
from diffkit.core import primal
from diffkit.experiments.catalog import ARTICLE_DEPTH, catalog, chain_rule_table, get
from diffkit.reverse import _trace
from diffkit.tolerance import close

FULL_POINTS = 5
QUICK_POINTS = 1
# SymPy's reference for a chain swells with depth (see the swell study): at depth 4 it takes a
# second or two per point; at the article's depth 10 compare's 30 s limit stops it for
# leaky_relu, elu and silu, and whether it finishes would depend on the machine. Chains are
# compared at depth 4 (quick: 3); the vanishing study cross-checks depth 10.
CHAIN_DEPTH = 4
QUICK_CHAIN_DEPTH = 3
METHODS = ("reverse", "forward", "symbolic", "central", "complex_step")
# A random point is kept only when every switch (relu's input, ...) is at least this far from
# its kink, so that finite differences never straddle one, and every value is below OVERFLOW.
KINK_MARGIN = 0.05
OVERFLOW = 1e6
MAX_DRAWS = 100_000
_SWITCHES = {"relu", "leaky_relu", "elu", "abs", "sign", "heaviside"}


def safe_point(case, point) -> bool:
    """True when no switch of the traced graph is within KINK_MARGIN of its kink and every
    intermediate value is finite and below OVERFLOW in magnitude.

    Example:
        >>> case = get("chain_relu_2")
        >>> safe_point(case, (1.0, 1.0, 1.0)), safe_point(case, (1.0, -1.0, 1.0))
        (True, False)
    """
    count = len(case.variables)
    out, tape, _ = _trace(case.function, point, tuple(range(count)), {})
    for entry in tape[count:]:
        prim, vals, _, ans, _ = entry
        if not (math.isfinite(ans) and abs(ans) < OVERFLOW):
            return False
        if prim.name in _SWITCHES and abs(vals[0]) < KINK_MARGIN:
            return False
        if prim.name == "maximum" and abs(vals[0] - vals[1]) < KINK_MARGIN:
            return False
    return math.isfinite(primal(out))


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


def evaluate(name: str, point: tuple) -> dict:
    """Compare every method on case `name` at `point`; return the Comparison's numbers.

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
        "kinks": len(full["kinks"]),
        "value": full["value"],
        "methods": {
            m: {key: full["methods"][m][key] for key in
                ("max_abs_error", "max_rel_error", "agree", "applicable", "note")}
            for m in METHODS
        },
        "notes": full["notes"],
        "timing": full["timing"],
    }


def _evaluate_task(task):
    return evaluate(*task)


def _worst(values):
    finite = [v for v in values if v is not None and not math.isnan(v)]
    return max(finite) if finite else None


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
    return {
        "name": name,
        "point": evaluations[0]["point"],
        "points": len(evaluations),
        "references": sorted({e["reference"] for e in evaluations}),
        "kinks": sum(e["kinks"] for e in evaluations),
        "methods": methods,
        "agree": all(e["agree"] for e in evaluations),
        "evaluations": [{k: v for k, v in e.items() if k != "timing"} for e in evaluations],
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


def run(quick: bool = False, seeds: int | None = None, progress=None, workers=None,
        only=None) -> dict:
    """Run the study: article's point + `seeds` random points per case (default 5, quick 1).

    `only` restricts it to some case names; `workers` processes compare side by side (default
    up to 2); results do not depend on it.

    Example:
        >>> result = run(quick=True, seeds=1, workers=1, only=("sum_product",))
        >>> result["all_agree"], result["cases"][0]["points"]
        (True, 2)
    """
    count = seeds if seeds is not None else (QUICK_POINTS if quick else FULL_POINTS)
    depth = QUICK_CHAIN_DEPTH if quick else CHAIN_DEPTH
    cases = [c for c in catalog(chain_depth=depth) if only is None or c.name in only]
    tasks = []
    for case in cases:
        tasks += [(case.name, point) for point in [case.point] + random_points(case, count)]
    started = time.perf_counter()
    jobs = _workers(workers)
    results = []
    if jobs == 1 or len(tasks) == 1 or "fork" not in get_all_start_methods():
        mapped = map(_evaluate_task, tasks)
        pool = None
    else:
        # fork, not spawn: spawn re-imports the caller's __main__, which a script may not guard.
        pool = get_context("fork").Pool(jobs)
        mapped = pool.imap(_evaluate_task, tasks)
    try:
        for k, result in enumerate(mapped):
            results.append(result)
            if progress and ((k + 1) % 10 == 0 or k + 1 == len(tasks)):
                progress(f"agreement: {k + 1}/{len(tasks)} comparisons")
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    summaries, method_seconds = [], dict.fromkeys(METHODS, 0.0)
    for k, case in enumerate(cases):
        evaluations = results[k * (count + 1) : (k + 1) * (count + 1)]
        summaries.append(summarize(case.name, evaluations))
        for e in evaluations:
            for m in METHODS:
                method_seconds[m] += e["timing"].get(m, 0.0)
    return {
        "parameters": {"quick": quick, "seeds": count},
        "methods": list(METHODS),
        "random_points": count,
        "chain_depth": depth,
        "article_depth": ARTICLE_DEPTH,
        "kink_margin": KINK_MARGIN,
        "cases": summaries,
        "all_agree": all(s["agree"] for s in summaries),
        "expected": expected_checks(catalog(chain_depth=depth)),
        "chain_rule": chain_rule_tables(),
        "timing": {
            "seconds": time.perf_counter() - started,
            "workers": jobs,
            "method_seconds": method_seconds,
        },
    }
