"""The accuracy study: how far finite differences and the complex step fall from the 30-digit
reference as their step h shrinks (truncation against rounding), in float64 and float32."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import mpmath
import numpy as np
import sympy

import diffkit as dk
from diffkit import numeric, reference, symbolic
from diffkit.experiments import catalog

ORDER = 50  # the study's place in the report (diffkit.experiments.STUDIES)
METHODS = ("forward", "central", "richardson", "complex_step")
DTYPES = ("float64", "float32")
FORMULAS = {
    "forward": "(f(x+h) - f(x)) / h",
    "central": "(f(x+h) - f(x-h)) / 2h",
    "richardson": "(4 D(h/2) - D(h)) / 3, D the central difference",
    "complex_step": "Im f(x+ih) / h",
}
# The exponent p of the rule-of-thumb step eps**p * max(1, |x|): it balances the method's
# truncation error (order 1, 2, 4 in h) against rounding eps |f| / h when |f| ~ |f^(k)|.
RULE_POWER = {"forward": 1 / 2, "central": 1 / 3, "richardson": 1 / 5}
COMPLEX_RULE_STEP = 1e-20  # what diffkit's numeric.complex_step uses
PER_DECADE = 4
TINY_STEPS = tuple(10.0**-k for k in range(17, 201))  # the complex step only
TAYLOR_ORDER = 7  # derivatives of f up to this order feed the error model
REGIME = 10.0  # a regime: one error term at least this many times the other
LEADING = 0.1  # the truncation model's leading term dominates: the next is below this share
SATURATED = 0.1  # a relative error this large has lost every digit: not fitted as rounding


@dataclass(frozen=True)
class StudyCase:
    """One derivative of a catalog function: d f / d variables[index] at `point`."""

    name: str
    label: str
    source: str
    function: object
    variables: tuple
    point: tuple
    index: int

    def along(self, point) -> object:
        """f as a function of the studied variable alone, the others fixed at `point`."""
        def g(t):
            args = list(point)
            args[self.index] = t
            return self.function(*args)

        return g


def cases() -> tuple:
    """Return the study's cases: catalog functions, each differentiated along one variable.

    Example:
        >>> [c.name for c in cases()][:2]
        ['sigmoid_neuron', 'tanh at 0.5']
    """
    neuron = catalog.get("sigmoid_neuron")
    chain = catalog.get("chain_sigmoid_10")
    logistic = catalog.get("logistic_map_4")
    return (
        StudyCase("sigmoid_neuron", "sigmoid neuron, d/dw at (x, w, b) = (1, 0, 0)",
                  "sigmoid_neuron", neuron.function, neuron.variables, neuron.point, 1),
        StudyCase("tanh at 0.5", "tanh(x) at x = 0.5", "tanh", dk.tanh, ("x",),
                  (0.5,), 0),
        StudyCase("tanh at 3", "tanh(x) at x = 3", "tanh", dk.tanh, ("x",), (3.0,), 0),
        StudyCase("exp at 1", "exp(x) at x = 1", "exp", dk.exp, ("x",), (1.0,), 0),
        StudyCase("exp at 10", "exp(x) at x = 10", "exp", dk.exp, ("x",), (10.0,), 0),
        StudyCase("chain_sigmoid_10", "depth-10 sigmoid chain, d/dw1 at x = w_i = 1",
                  "chain_sigmoid_10", chain.function, chain.variables, chain.point, 1),
        StudyCase("logistic_map_4", "logistic map l_4, d/dx at x = 0.3", "logistic_map_4",
                  logistic.function, logistic.variables, logistic.point, 0),
        StudyCase("steep neuron", "sigmoid neuron with w = 128, d/dx at (x, w, b) = "
                  "(1/128, 128, 0): a large second derivative", "sigmoid_neuron",
                  neuron.function, neuron.variables, (1 / 128, 128.0, 0.0), 0),
    )


def steps(per_decade: int = PER_DECADE, complex_step: bool = False) -> tuple:
    """Return the nominal steps h, largest first: 1e-1 .. 1e-16 at `per_decade` a decade, and
    for the complex step every power of ten on down to 1e-200.

    Example:
        >>> steps(1)[:2], len(steps(1)), steps(1, complex_step=True)[-1]
        ((0.1, 0.01), 16, 1e-200)
    """
    grid = tuple(10.0 ** (-k / per_decade) for k in range(per_decade, 16 * per_decade + 1))
    return grid + (TINY_STEPS if complex_step else ())


# ---- the four quotients in one dtype: every operation in that dtype, steps made exact ----


def _checked(value, dtype) -> float:
    """value as a Python float, once it is shown to be a `dtype` number (no silent float64)."""
    if np.asarray(value).dtype != dtype:
        raise TypeError(f"the study expected {np.dtype(dtype)}, f returned "
                        f"{np.asarray(value).dtype}")
    return float(value)


def _central(g, x, h, dtype):
    """(D, step) with D = (g(x+h) - g(x-h)) / (x+h - (x-h)) left in dtype; (None, 0.0) when
    x+h == x-h."""
    up, down = x + dtype(h), x - dtype(h)
    if up == down:
        return None, 0.0
    width = up - down
    return (g(up) - g(down)) / width, float(width) / 2


def _quotient(method, g, x, h, dtype):
    """(D in dtype, exact step) or (None, 0.0): see `quotient`."""
    if method == "forward":
        moved = x + dtype(h)
        if moved == x:
            return None, 0.0
        step = moved - x
        return (g(moved) - g(x)) / step, float(step)
    if method == "central":
        return _central(g, x, h, dtype)
    if method == "richardson":
        coarse, step = _central(g, x, h, dtype)
        fine, _ = _central(g, x, h / 2, dtype)
        if coarse is None or fine is None:
            return None, 0.0
        return (4 * fine - coarse) / 3, step
    if method == "complex_step":
        small = dtype(h)
        if small < np.finfo(dtype).tiny:
            return None, 0.0
        complex_dtype = np.complex64 if dtype == np.float32 else np.complex128
        out = g(complex_dtype(complex(x, small)))
        if np.asarray(out).dtype != complex_dtype:
            raise TypeError(f"the study expected {np.dtype(complex_dtype)}, f returned "
                            f"{np.asarray(out).dtype}")
        return np.imag(out) / small, float(small)
    raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def quotient(method: str, g, x, h: float, dtype=np.float64):
    """Return (D, step): `method`'s derivative of g at x (a `dtype` number) with nominal step h,
    every operation in dtype, as a Python float, and the exact step it took ((x+h) - x);
    (None, 0.0) where x+h rounds to x (or h to 0).

    Example:
        >>> quotient("central", lambda t: t * t, 3.0, 0.5)
        (6.0, 0.5)
    """
    value, step = _quotient(method, g, x, h, dtype)
    return (None if value is None else _checked(value, dtype)), step


def rule_step(method: str, x: float, dtype=np.float64) -> float:
    """Return the rule-of-thumb step of `method` in `dtype`: eps**p * max(1, |x|) (p = 1/2,
    1/3, 1/5), 1e-20 for the complex step; for float64 these are diffkit's own steps.

    Example:
        >>> rule_step("forward", 4.0) == 4 * 2.0**-26
        True
    """
    if method == "complex_step":
        return COMPLEX_RULE_STEP
    eps = float(np.finfo(dtype).eps)
    return eps ** RULE_POWER[method] * max(1.0, abs(x))


# ---- the error model: Taylor coefficients of f at the point (mpmath, 50 digits) ----


def derivatives(g, x: float, name: str, order: int = TAYLOR_ORDER) -> list:
    """Return [f(x), f'(x), ..., f^(order)(x)] as floats: g traced into SymPy, evaluated by
    mpmath's Taylor expansion at 50 digits (the error model's constants).

    Example:
        >>> [round(v, 12) for v in derivatives(lambda t: t**3, 2.0, "t", 4)]
        [8.0, 12.0, 12.0, 6.0, 0.0]
    """
    traced = symbolic.trace(g, x, names=(name,))
    f = sympy.lambdify(traced.symbols, traced.expr, modules="mpmath")
    with mpmath.workdps(50):
        coefficients = mpmath.taylor(f, mpmath.mpf(x), order)
        return [float(c * mpmath.factorial(k)) for k, c in enumerate(coefficients)]


def truncation_terms(method: str, d: list) -> list:
    """Return the truncation error of `method` as a series [(coefficient, power), ...] in h,
    from the derivatives d = [f, f', ...]: D(h) - f' = sum of coefficient * h**power.

    Example:
        >>> truncation_terms("central", [0, 1, 0, 6, 0, 0, 0, 0])[0]
        (1.0, 2)
    """
    odd = [(d[2 * k + 1] / math.factorial(2 * k + 1), 2 * k) for k in range(1, 4)]
    if method == "forward":
        return [(d[k] / math.factorial(k), k - 1) for k in range(2, len(d))]
    if method == "central":
        return odd
    if method == "richardson":
        return [(c * (4.0 ** (1 - p // 2) - 1) / 3, p) for c, p in odd[1:]]
    if method == "complex_step":
        return [((-1) ** (p // 2) * c, p) for c, p in odd]
    raise ValueError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def leading(terms: list, scale: float) -> tuple:
    """Return the first (coefficient, power) of `terms` that is not zero against `scale`
    (the largest |f^(k)| in play), or (0.0, power of the last term)."""
    for coefficient, power in terms:
        if abs(coefficient) > 1e-30 * scale:
            return coefficient, power
    return 0.0, terms[-1][1]


def rounding(method: str, d: list, dtype) -> float:
    """Return the rounding term's constant r: rounding error ~ r / h for the differences
    (r = eps |f|, the textbook size of f's rounding), ~ r for the complex step (r = eps |f'|)."""
    eps = float(np.finfo(dtype).eps)
    return eps * abs(d[1]) if method == "complex_step" else eps * abs(d[0])


def model(method: str, d: list, dtype) -> dict:
    """Return the textbook model of `method`'s absolute error: the leading truncation term
    c h**p, the rounding constant r, the optimal step (c h**p + r / h least; for the complex step
    the largest step where c h**p stays below r) and the error there.

    Example:
        >>> m = model("central", [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], np.float64)
        >>> m["power"], round(m["optimal_step"] / (2.0**-52) ** (1 / 3), 3)
        (2, 1.442)
    """
    terms = truncation_terms(method, d)
    c, p = leading(terms, max(abs(v) for v in d))
    r = rounding(method, d, dtype)
    if c == 0 or r == 0:
        return {"coefficient": c, "power": p, "rounding": r, "optimal_step": None,
                "optimal_error": r if method == "complex_step" else None}
    c = abs(c)
    if method == "complex_step":
        h = (r / c) ** (1 / p)
        return {"coefficient": c, "power": p, "rounding": r, "optimal_step": h,
                "optimal_error": r}
    h = (r / (p * c)) ** (1 / (p + 1))
    return {"coefficient": c, "power": p, "rounding": r, "optimal_step": h,
            "optimal_error": c * h**p + r / h}


def regimes(method: str, d: list, dtype, hs) -> list:
    """Label each step: 'truncation' where the leading truncation term dominates the rest of
    the series and is REGIME times the rounding term, 'rounding' where rounding is REGIME times
    the truncation error, else 'mixed'.

    Example:
        >>> regimes("forward", [1.0] * 8, np.float64, [1e-3, 1e-8, 1e-13])
        ['truncation', 'mixed', 'rounding']
    """
    terms = truncation_terms(method, d)
    scale = max(abs(v) for v in d)
    c, p = leading(terms, scale)
    r = rounding(method, d, dtype)
    labels = []
    for h in hs:
        lead = abs(c) * h**p
        rest = sum(abs(a) * h**q for a, q in terms if q > p)
        noise = r if method == "complex_step" else r / h
        total = lead + rest
        if lead > 0 and rest <= LEADING * lead and lead >= REGIME * noise:
            labels.append("truncation")
        elif method != "complex_step" and noise >= REGIME * total:
            labels.append("rounding")
        else:
            labels.append("mixed")
    return labels


def slope(hs, errors):
    """Least-squares slope of log10(error) against log10(h), or None with fewer than 4 points
    or less than one decade of h.

    Example:
        >>> round(slope([1e-1, 1e-2, 1e-3, 1e-4], [1e-2, 1e-4, 1e-6, 1e-8]), 6)
        2.0
    """
    points = [(math.log10(h), math.log10(e)) for h, e in zip(hs, errors) if h and e]
    if len(points) < 4 or points[0][0] - points[-1][0] < 1:
        return None
    x = np.array([p[0] for p in points])
    y = np.array([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


# ---- one case in one dtype ----


def _rounded_point(case: StudyCase, dtype) -> tuple:
    return tuple(float(dtype(v)) for v in case.point)


def _sweep(case, dtype, d):
    point = tuple(dtype(v) for v in _rounded_point(case, dtype))
    g = case.along(point)
    x = point[case.index]
    gradient = d[1]
    series, rules, best, fits, models = {}, {}, {}, {}, {}
    for method in METHODS:
        hs, errors = [], []
        for h in steps(complex_step=method == "complex_step"):
            value, step = quotient(method, g, x, h, dtype)
            if value is None:
                continue
            hs.append(step)
            errors.append(abs(float(value) - gradient))
        series[method] = {"steps": hs, "abs_error": errors}
        h = rule_step(method, float(x), dtype)
        value, step = quotient(method, g, x, h, dtype)
        rules[method] = {"step": step, "abs_error": abs(float(value) - gradient)}
        # the best error counts only where it holds at the neighbouring steps too (a quarter
        # decade either way): in the rounding regime one step's error can be luckily tiny
        held = [max(errors[max(0, k - 1):k + 2]) for k in range(len(errors))]
        k = int(np.argmin(held))
        best[method] = {"step": hs[k], "abs_error": held[k], "at_step": errors[k]}
        models[method] = model(method, d, dtype)
        labels = regimes(method, d, dtype, hs)
        fit = {}
        for regime in ("truncation", "rounding"):
            chosen = [(h, e) for h, e, label in zip(hs, errors, labels) if label == regime
                      and (regime == "truncation" or e < SATURATED * abs(gradient))]
            fit[regime] = slope([h for h, _ in chosen], [e for _, e in chosen])
            fit[f"{regime}_points"] = len(chosen)
        fits[method] = fit
    return {"series": series, "rule": rules, "best": best, "model": models, "slopes": fits}


def _reference(case, dtype):
    point = _rounded_point(case, dtype)
    g = case.along(point)
    x = point[case.index]
    ref = reference.compute(g, (x,), (case.variables[case.index],))
    d = derivatives(g, x, case.variables[case.index])
    return point, ref, d


def _diffkit_numerics(case, point, gradient):
    """diffkit's own numeric module on the case (float64): its step, value, error estimate."""
    g = case.along(point)
    x = point[case.index]
    found = {
        "forward": numeric.forward_difference(g, (x,)),
        "central": numeric.central_difference(g, (x,), richardson=False),
        "richardson": numeric.central_difference(g, (x,)),
        "complex_step": numeric.complex_step(g, (x,)),
    }
    return {m: {"step": float(r.step[0]), "value": float(r.value[0]),
                "estimate": float(r.error[0]), "scheme": str(r.scheme[0]),
                "abs_error": abs(float(r.value[0]) - gradient)} for m, r in found.items()}


def _ad(case, dtype):
    """Reverse and forward mode over every variable in `dtype` against the reference at the
    dtype's point: per entry the reference, and each mode's absolute error. The inputs are 0-d
    arrays: dk.grad and dk.jvp take a NumPy scalar as a Python float (float64)."""
    point = _rounded_point(case, dtype)
    ref = reference.compute(case.function, point, case.variables)
    args = tuple(np.array(v, dtype=dtype) for v in point)
    n = len(args)
    grads = dk.grad(case.function, argnums=tuple(range(n)))(*args)
    reverse = [_checked(g, dtype) for g in grads]
    forward = []
    for i in range(n):
        tangents = tuple(np.array(1.0 if j == i else 0.0, dtype=dtype) for j in range(n))
        tangent = dk.jvp(case.function, args, tangents)[1]
        if float(dtype(tangent)) != float(tangent):  # jvp returns a 0-d result as a float
            raise TypeError(f"the study expected a {np.dtype(dtype)} tangent, got {tangent!r}")
        forward.append(float(tangent))
    exact = [float(v) for v in ref.gradient]
    return {
        "variables": list(case.variables), "reference": exact,
        "reverse": [abs(a - b) for a, b in zip(reverse, exact)],
        "forward": [abs(a - b) for a, b in zip(forward, exact)],
    }


def _case(case, progress):
    out = {"name": case.name, "label": case.label, "source": case.source,
           "variable": case.variables[case.index], "point": list(case.point), "dtypes": {},
           "ad": {}}
    for name in DTYPES:
        dtype = np.dtype(name).type
        point, ref, d = _reference(case, dtype)
        entry = {
            "point": point[case.index],
            "value": d[0],
            "gradient": float(ref.gradient[0]),
            "reference_digits": min(float(ref.digits), 99.0),
            "derivatives": d,
        }
        entry.update(_sweep(case, dtype, [d[0], float(ref.gradient[0]), *d[2:]]))
        if name == "float64":
            entry["diffkit"] = _diffkit_numerics(case, point, float(ref.gradient[0]))
        out["dtypes"][name] = entry
        out["ad"][name] = _ad(case, dtype)
    if progress:
        progress(f"accuracy: {case.name}")
    return out


# ---- the summaries: best error, rule of thumb, the tolerance a gradient check needs ----


def _relative(entry, error):
    return error / abs(entry["gradient"])


def _summary(results):
    rows = []
    for dtype in DTYPES:
        for method in METHODS:
            entries = [c["dtypes"][dtype] for c in results]
            best = [_relative(e, e["best"][method]["abs_error"]) for e in entries]
            at_rule = [_relative(e, e["rule"][method]["abs_error"]) for e in entries]
            worst = int(np.argmax(at_rule))
            scaled = [e["rule"][method]["abs_error"] / (abs(e["gradient"]) + abs(e["value"]))
                      for e in entries]
            needed = max(at_rule)
            rows.append({
                "method": method, "dtype": dtype,
                "rule": ("1e-20" if method == "complex_step" else
                         f"eps^(1/{round(1 / RULE_POWER[method])}) max(1, |x|)"),
                "rule_step": rule_step(method, 1.0, np.dtype(dtype).type),
                "best_rel_error_median": float(np.median(best)),
                "best_rel_error_max": max(best),
                "best_steps": [min(e["best"][method]["step"] for e in entries),
                               max(e["best"][method]["step"] for e in entries)],
                "rule_rel_error_median": float(np.median(at_rule)),
                "needed_rtol": needed,
                "worst_case": results[worst]["name"],
                "suggested_rtol": 10.0 ** math.ceil(math.log10(10 * needed)) if needed else 0.0,
                "needed_scaled_tol": max(scaled),
            })
    return rows


def _slope_summary(results):
    """Per dtype, method and regime: the slopes fitted over the cases, and the largest distance
    of a fitted slope from the model's (the power of h of the leading truncation term, -1 for
    rounding)."""
    out = {}
    for dtype in DTYPES:
        out[dtype] = {}
        for method in METHODS:
            out[dtype][method] = {}
            for regime in ("truncation", "rounding"):
                fits, distance, powers = [], 0.0, set()
                for c in results:
                    entry = c["dtypes"][dtype]
                    fitted = entry["slopes"][method][regime]
                    if fitted is None:
                        continue
                    expected = entry["model"][method]["power"] if regime == "truncation" else -1
                    fits.append(fitted)
                    powers.add(expected)
                    distance = max(distance, abs(fitted - expected))
                out[dtype][method][regime] = {
                    "fits": len(fits),
                    "median": float(np.median(fits)) if fits else None,
                    "min": min(fits) if fits else None,
                    "max": max(fits) if fits else None,
                    "model": sorted(powers),
                    "max_distance": distance if fits else None,
                }
    return out


def _complex_flat(results):
    """Per dtype and case: the complex step's largest relative error over the steps below the
    model's (where its truncation is below eps |f'|), and the step where it occurs."""
    out = {}
    for dtype in DTYPES:
        rows = []
        for c in results:
            entry = c["dtypes"][dtype]
            series = entry["series"]["complex_step"]
            limit = entry["model"]["complex_step"]["optimal_step"] or math.inf
            flat = [(e / abs(entry["gradient"]), h) for h, e in zip(series["steps"],
                                                                    series["abs_error"])
                    if h <= limit]
            worst, at = max(flat) if flat else (None, None)
            rows.append({"case": c["name"], "largest_step": limit if flat else None,
                         "smallest_step": min(h for _, h in flat) if flat else None,
                         "max_rel_error": worst, "at_step": at})
        out[dtype] = rows
    return out


def _ad_summary(results):
    rows = []
    for dtype in DTYPES:
        for mode in ("reverse", "forward"):
            worst, case_name = 0.0, None
            for c in results:
                ad = c["ad"][dtype]
                for ref, err in zip(ad["reference"], ad[mode]):
                    rel = err / abs(ref) if ref else (0.0 if err == 0 else math.inf)
                    if rel >= worst:
                        worst, case_name = rel, c["name"]
            rows.append({"mode": mode, "dtype": dtype, "max_rel_error": worst,
                         "worst_case": case_name})
    return rows


def run(quick: bool = False, seeds: int | None = None, progress=None) -> dict:
    """Run the study; return its numbers (JSON-ready), timing only under "timing".

    Quick mode runs the same study (it takes a second or two). `seeds` is unused (nothing is
    random); both are accepted so that every study takes the same parameters.

    Example:
        >>> result = run(quick=True)
        >>> [c["name"] for c in result["cases"]][-1], result["parameters"]["quick"]
        ('steep neuron', True)
    """
    started = time.perf_counter()
    results = [_case(case, progress) for case in cases()]
    return {
        "parameters": {"quick": quick, "steps_per_decade": PER_DECADE},
        "methods": {m: {"formula": FORMULAS[m], "rule_power": RULE_POWER.get(m)}
                    for m in METHODS},
        "dtypes": {name: {"eps": float(np.finfo(name).eps),
                          "tiny": float(np.finfo(name).tiny)} for name in DTYPES},
        "largest_step": steps()[0], "smallest_step": steps()[-1],
        "smallest_complex_step": TINY_STEPS[-1],
        "regime_factor": REGIME, "saturated": SATURATED,
        "cases": results,
        "summary": _summary(results),
        "slopes": _slope_summary(results),
        "complex_flat": _complex_flat(results),
        "ad_summary": _ad_summary(results),
        "timing": {"seconds": time.perf_counter() - started},
    }
