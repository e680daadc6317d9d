"""The conformance study: the AD engines installed (diffkit, the article's engine, micrograd,
PyTorch, JAX) checked side by side by diffkit.conformance, op by op, with the value each chooses
at a kink and its properties."""

from __future__ import annotations

import importlib.util
import time
import warnings
from pathlib import Path

import numpy as np

import diffkit
from diffkit import conformance, reference
from diffkit.check import accepted
from diffkit.errors import InputError
from diffkit.ops import PRIMITIVES

ORDER = 60  # the study's place in the report (diffkit.experiments.STUDIES)
ENGINES = ("diffkit", "article", "micrograd", "torch", "jax")
# quick mode: the engines in plain Python; importing torch or JAX alone takes seconds
QUICK_ENGINES = ("diffkit", "article", "micrograd")
# Where the article's engine is found, first hit wins: beside the package (a source checkout,
# installed editable), then examples/ under the current folder (a checkout that installed diffkit
# with a plain `pip install .`, as the README's main command does: its package has no examples/)
ARTICLE_PLACES = (Path(diffkit.__file__).resolve().parent.parent / "examples" / "article_engine.py",
                  Path("examples") / "article_engine.py")
ADAPTERS = {"diffkit": "diffkit", "article": "examples/article_engine.py",
            "micrograd": "micrograd", "torch": "torch", "jax": "jax"}
INSTALL = {
    "diffkit": "reinstall diffkit",
    "article": "run `diffkit report` from a checkout of diffkit's source (examples/ is not in "
               "the package)",
    "micrograd": "pip install micrograd",
    "torch": "pip install torch (the CPU-only build, far smaller: pip install torch "
             "--index-url https://download.pytorch.org/whl/cpu)",
    "jax": "pip install jax",
}
IMPORTS = {"micrograd": "micrograd", "torch": "torch", "jax": "jax"}  # what each adapter needs
# chains of 10 ... 10^4 (the depth an engine must reach); `diffkit conformance` also tries 10^5,
# which takes JAX about 30 s alone (its tracing costs about 0.25 ms per operation)
DEPTHS = conformance.QUICK_DEPTHS


def _requested(engines, quick: bool) -> dict:
    """Engine label -> adapter spec, for `engines` (None: the default set of the mode; names
    from ENGINES; or a dict label -> adapter spec)."""
    if engines is None:
        engines = QUICK_ENGINES if quick else ENGINES
    if isinstance(engines, dict):
        return {str(k): v for k, v in engines.items()}
    engines = [engines] if isinstance(engines, str) else list(engines)
    unknown = [e for e in engines if e not in ADAPTERS]
    if unknown or not engines:
        raise InputError(f"engines names {', '.join(map(str, unknown)) or 'nothing'}; use some "
                         f"of {', '.join(ENGINES)}")
    return {e: ADAPTERS[e] for e in engines}


def _load(label: str, spec):
    """The adapter of spec; InputError (one line, no machine's path) when it cannot be had."""
    if spec == ADAPTERS.get(label) and label == "article":
        found = [place for place in ARTICLE_PLACES if place.is_file()]
        if not found:
            raise InputError("examples/article_engine.py is not there")
        spec = str(found[0].resolve())
    if spec == ADAPTERS.get(label) and label in IMPORTS and (
            importlib.util.find_spec(IMPORTS[label]) is None):
        raise InputError(f"{IMPORTS[label]} is not installed")
    return conformance.load(spec)


def kink_points(quick: bool = False) -> dict:
    """Op -> the points where it is checked at a switch (kind "kink"), for the ops that have
    one, each with the one-sided derivatives there from diffkit's reference: a list of
    {"point", "one_sided": {"d/dx": [low, high], ...}} (low == high: no kink there).

    Example:
        >>> kink_points(quick=True)["relu"]
        [{'point': [0.0], 'one_sided': {'d/dx': [0.0, 1.0]}}]
    """
    found = {}
    for name in conformance.SCALAR_OPS:
        prim = PRIMITIVES[name]
        names = ("x", "y")[:conformance.SCALAR_OPS[name]]
        rows = []
        for kind, point in conformance.points(name, quick):
            if kind != "kink":
                continue
            ref = reference.compute(lambda *a, p=prim: p(*a, **p.parameters), point, names)
            sides = {}
            for n, entry in zip(names, accepted(ref)):
                low, high = ((entry.low, entry.high) if entry.status == "kink"
                             else (entry.value, entry.value))
                sides[f"d/d{n}"] = [float(low), float(high)]
            rows.append({"point": [float(v) for v in point], "one_sided": sides})
        if rows:
            found[name] = rows
    return found


def _engine(adapter, quick: bool) -> dict:
    """One engine checked by diffkit.conformance.run (chains to DEPTHS): its JSON entry, and
    the numbers that vary between runs (seconds; a cost factor measured by time)."""
    result = conformance.run(adapter, quick=quick, depths=DEPTHS).to_dict()
    p = result["properties"]
    # a cost factor from Python call counts is exact; one from time varies run to run
    timed = p["cost_note"].startswith("time")
    failures = list(p["failures"])
    if timed and p["cost_factor"] is not None and p["cost_factor"] > conformance.COST_LIMIT:
        failures = [f for f in failures if not f.startswith("the cost")] + [
            f"the cost of a gradient grows more than {conformance.COST_LIMIT}x per step "
            f"(measured by time)"]
    properties = {
        "mutates_inputs": p["mutates_inputs"], "mutating_ops": p["mutating_ops"],
        "repeatable": p["repeatable"], "unrepeatable_ops": p["unrepeatable_ops"],
        "max_depth": p["max_depth"], "depth_op": p["depth_op"],
        "depth_error": p["depth_error"], "depth_required": p["depth_required"],
        "cost_factor": None if timed else p["cost_factor"],
        "cost_measure": "time" if timed else ("Python calls" if p["cost_factor"] is not None
                                              else None),
        "cost_conforms": (None if p["cost_factor"] is None
                          else p["cost_factor"] <= conformance.COST_LIMIT),
        "cost_note": None if timed else p["cost_note"],
        "failures": failures,
    }
    ops = {name: {k: op[k] for k in ("verdict", "checked", "wrong", "max_rel_error",
                                     "first_wrong", "conventions", "mutates_input",
                                     "repeatable")}
           for name, op in result["ops"].items()}
    entry = {"engine": result["engine"], "ops": ops, "compositions": result["compositions"],
             "properties": properties, "agree": result["agree"]}
    timing = {"seconds": result["seconds"]}
    if timed:
        timing.update(cost_factor=p["cost_factor"], cost_note=p["cost_note"])
    return entry, timing


def run(quick: bool = False, seeds: int | None = None, progress=None, engines=None) -> dict:
    """Check every engine requested (default: all five; quick: those in plain Python) and
    return the matrix: per engine its ops' verdicts with their conventions and first wrong
    point, its compositions and properties; engines that could not be loaded under "absent"
    with the reason and how to install them; the kink points with their one-sided
    derivatives. `seeds` is unused (the random compositions have a fixed seed). Seconds, and a
    cost factor measured by time, are under "timing".

    Example:
        >>> r = run(quick=True, engines=["diffkit"])
        >>> r["present"], r["engines"]["diffkit"]["ops"]["relu"]["verdict"]
        (['diffkit'], 'convention')
    """
    started = time.perf_counter()
    requested = _requested(engines, quick)
    present, absent, results, timing = [], {}, {}, {}
    for number, (label, spec) in enumerate(requested.items(), 1):
        if progress:
            progress(f"conformance: {label} ({number}/{len(requested)})")
        loading = time.perf_counter()
        try:
            adapter = _load(label, spec)
        except InputError as error:
            absent[label] = {"reason": str(error).rstrip("."),
                             "install": INSTALL.get(label, "install the engine")}
            continue
        loaded = time.perf_counter() - loading
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[label], timing[label] = _engine(adapter, quick)
        timing[label]["load_seconds"] = loaded
        present.append(label)
    return {
        "parameters": {
            "quick": quick, "engines": list(requested), "chosen": engines is not None,
            "not_requested": [e for e in ENGINES if e not in requested],
            "points": {op: len(conformance.points(op, quick)) for op in conformance.SCALAR_OPS},
            "full_points": {op: len(conformance.points(op)) for op in conformance.SCALAR_OPS},
            "depths": list(DEPTHS), "full_depths": list(conformance.DEPTHS),
            "random_expressions": conformance.RANDOM_EXPRESSIONS[1 if quick else 0],
            "full_random_expressions": conformance.RANDOM_EXPRESSIONS[0],
            "cost_limit": conformance.COST_LIMIT,
        },
        "ops": list(conformance.SCALAR_OPS),
        "present": present,
        "absent": absent,
        "engines": results,
        "kinks": kink_points(quick),
        "timing": {"seconds": time.perf_counter() - started, "engines": timing},
    }
