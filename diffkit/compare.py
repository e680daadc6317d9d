"""Run every method of differentiation at one point, measure each against the high-precision
symbolic reference, and decide agreement with per-method tolerances (the Comparison)."""

from __future__ import annotations

import math
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tabulate import tabulate

from diffkit import numeric, ops, symbolic
from diffkit.core import shape_of
from diffkit.errors import InputError
from diffkit.expression import Expression
from diffkit.forward import jvp
from diffkit.reverse import check_input, grad
from diffkit.tolerance import Tolerance

METHODS = ("reverse", "forward", "symbolic", "central", "complex_step")
EPS = float(np.finfo(float).eps)

# Expected accuracy of each method, as (rtol, atol). A method agrees when every entry is within
# atol + rtol * |reference| + FLOOR * eps * max|reference| of the reference; the floor allows a
# few ulps of the largest entry in the small ones (rounding in sums of large terms). Central
# differences add ERROR_FACTOR times their own error estimate (Richardson's), entry by entry.
TOLERANCES = {
    "reverse": Tolerance(rtol=1e-9, atol=1e-12),
    "forward": Tolerance(rtol=1e-9, atol=1e-12),
    "symbolic": Tolerance(rtol=1e-12, atol=1e-14),
    "central": Tolerance(rtol=1e-6, atol=1e-8),
    "complex_step": Tolerance(rtol=1e-9, atol=1e-12),
}
HESSIAN_TOLERANCES = {  # the complex-step Hessian takes a real central difference too
    "central": Tolerance(rtol=1e-4, atol=1e-6),
    "complex_step": Tolerance(rtol=1e-6, atol=1e-8),
}
FLOOR = 64
ERROR_FACTOR = 10.0
# Exact evaluation can explode (exp(exp(exp(...))) at 30 digits): past this many seconds the
# symbolic method gives up and the complex step (or central differences) becomes the reference.
SYMBOLIC_SECONDS = 30.0
# Rounding noise of the AD and complex-step gradients: their spread when every input moves by a
# few ulps. Cancellation (1e8 e^x - (1e8 - 1) e^x) shows up there as a large spread, a wrong
# rule does not; ERROR_FACTOR times the spread is added to those methods' tolerances.
NOISE_ULPS = 4
NOISE_SAMPLES = 4


@dataclass(frozen=True)
class MethodResult:
    """One method's derivatives at the point (flat over the variables) and their errors."""

    name: str
    gradient: np.ndarray | None
    hessian: np.ndarray | None = None
    max_abs_error: float = math.nan
    max_rel_error: float = math.nan
    agree: bool = False
    applicable: bool = True
    note: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Comparison:
    """Every method side by side at one point; `agree` is the verdict.

    `names` and `point` are flat (an array argument contributes one entry per element); every
    gradient is a vector and every Hessian a matrix over them.
    """

    names: tuple
    point: tuple
    value: float
    order: int
    reference: str
    methods: dict
    agree: bool
    kinks: tuple = ()
    notes: tuple = field(default=())

    @property
    def differentiable(self) -> bool:
        """False when the point sits on a kink with different left and right derivatives."""
        return all(k.differentiable for k in self.kinks)

    def table(self, fmt: str = "simple") -> str:
        """Return the comparison as a table: one row per method, one column per variable."""
        rows = []
        for m in self.methods.values():
            shown = [_number(v) for v in m.gradient] if m.gradient is not None else []
            shown += [""] * (len(self.names) - len(shown))
            verdict = "agree" if m.agree else ("n/a" if not m.applicable else "DISAGREE")
            rows.append([m.name, *shown, _number(m.max_abs_error), _number(m.max_rel_error),
                         verdict, m.note])
        headers = ["method", *(f"d/d{n}" for n in self.names), "max abs err", "max rel err",
                   "verdict", "note"]
        lines = [tabulate(rows, headers=headers, tablefmt=fmt, disable_numparse=True)]
        if self.order == 2:
            lines.append(self._hessian_table(fmt))
        lines.extend(self.summary())
        return "\n".join(lines)

    def _hessian_table(self, fmt):
        rows = []
        for m in self.methods.values():
            if m.hessian is None:
                rows.append([m.name, "n/a", m.note])
                continue
            ref = self.methods[self.reference].hessian
            err = _max(_errors(m.hessian, ref)[0]) if ref is not None else math.nan
            rows.append([m.name, _number(err), "agree" if m.agree else "DISAGREE"])
        return "\nHessian\n" + tabulate(rows, headers=["method", "max abs err", "verdict"],
                                        tablefmt=fmt, disable_numparse=True)

    def summary(self) -> list[str]:
        """One-line verdict, then notes on kinks and non-finite values."""
        verdict = "all methods agree" if self.agree else "the methods DISAGREE"
        lines = [f"{verdict} (reference: {self.reference}, value {_number(self.value)})"]
        for k in self.kinks:
            if not k.differentiable:
                lines.append(
                    f"not differentiable here: {k.node} switches at this point; left derivative"
                    f" {_vector(k.left)}, right derivative {_vector(k.right)}"
                )
        lines.extend(self.notes)
        return lines

    def __str__(self):
        return self.table()

    def _repr_markdown_(self):
        return self.table("github")

    def to_dict(self) -> dict:
        """Return a plain, strict-JSON-ready dict; non-finite numbers become None (see notes)."""
        notes = list(self.notes)
        names = list(self.names)

        def clean(x, where):
            if x is None:
                return None
            if np.ndim(x) > 0:
                return [clean(v, where) for v in x]
            x = float(x)
            if not math.isfinite(x):
                notes.append(f"{where} is {x}; written as null")
                return None
            return x

        out = {
            "value": clean(self.value, "the value"),
            "variables": names,
            "point": dict(zip(names, clean(list(self.point), "the point"))),
            "order": self.order,
            "reference": self.reference,
            "gradient": {},
            "methods": {},
            "agree": bool(self.agree),
            "differentiable": self.differentiable,
            "kinks": [
                {"node": k.node, "left": dict(zip(names, clean(k.left, "a left derivative"))),
                 "right": dict(zip(names, clean(k.right, "a right derivative")))}
                for k in self.kinks
            ],
            "timing": {m.name: m.seconds for m in self.methods.values()},
        }
        for m in self.methods.values():
            grad_values = m.gradient if m.gradient is not None else [None] * len(names)
            out["gradient"][m.name] = dict(
                zip(names, clean(list(grad_values), f"the {m.name} gradient"))
            )
            out["methods"][m.name] = {
                "max_abs_error": clean(m.max_abs_error, f"the {m.name} error"),
                "max_rel_error": clean(m.max_rel_error, f"the {m.name} relative error"),
                "agree": bool(m.agree),
                "applicable": bool(m.applicable),
                "note": m.note,
            }
        if self.order == 2:
            out["hessian"] = {
                m.name: None if m.hessian is None else clean(m.hessian, f"the {m.name} Hessian")
                for m in self.methods.values()
            }
        out["notes"] = list(dict.fromkeys(n for n in notes if n))
        return out


def _number(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.10g}" if abs(x) >= 1e-4 or x == 0 else f"{x:.3e}"


def _vector(values) -> str:
    return "(" + ", ".join(_number(float(v)) for v in values) + ")"


def _flatten(parts) -> np.ndarray:
    return np.concatenate([np.ravel(np.asarray(p, dtype=float)) for p in parts])


def _basis(args, k):
    """Tangents that are 1 at flat position k and 0 elsewhere, shaped like args."""
    out, offset = [], 0
    for a in args:
        size = int(np.prod(np.shape(a)))
        e = np.zeros(size)
        if offset <= k < offset + size:
            e[k - offset] = 1.0
        out.append(float(e[0]) if np.ndim(a) == 0 else e.reshape(np.shape(a)))
        offset += size
    return tuple(out)


def _run(name, compute):
    """Call compute() -> (gradient, hessian, note); an exception makes the method n/a."""
    start = time.perf_counter()
    try:
        gradient, hessian, note = compute()
        applicable = gradient is not None
    except Exception as error:  # a method that cannot run is reported, never fatal
        gradient, hessian, applicable = None, None, False
        note = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    return MethodResult(name, gradient, hessian, applicable=applicable, note=note,
                        seconds=time.perf_counter() - start)


def compare(f, *args, names=None, order: int = 1, rtol: float | None = None,
            atol: float | None = None) -> Comparison:
    """Differentiate f at args by every method and compare each with the symbolic reference.

    f is a function written with diffkit ops (or a parsed Expression, whose variables give
    `names`); args are floats or float arrays. `order=2` adds Hessians. By default each method
    has its own tolerance (TOLERANCES, widened by its error estimate or rounding noise); `rtol`
    and `atol`, when given, replace them all by |method - reference| <= atol + rtol |reference|.

    Example:
        >>> import diffkit as dk
        >>> c = compare(lambda x, w, b: 1 / (1 + dk.exp(-(w * x + b))), 1.0, 0.0, 0.0)
        >>> c.agree, [float(g) for g in c.methods["reverse"].gradient]
        (True, [0.0, 0.25, 0.25])
    """
    if order not in (1, 2):
        raise InputError(f"order must be 1 or 2, not {order}")
    if isinstance(f, Expression):
        names = f.variables if names is None else names
        f = f.function
    args = tuple(check_input(a, k) for k, a in enumerate(args))
    names = tuple(names) if names is not None else tuple(f"x{k}" for k in range(len(args)))
    argnums = tuple(range(len(args)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _compare(f, args, names, argnums, order, rtol, atol)


def _compare(f, args, names, argnums, order, rtol, atol):
    flat_names = tuple(symbolic.flat_names(names, [np.shape(a) for a in args]))
    n = len(flat_names)
    results, traced, kinks = {}, None, ()

    def reverse():
        g = _flatten(grad(f, argnums)(*args))
        errors["noise"] = _noise(f, args, argnums, g)
        if order == 1:
            return g, None, ""
        rows = [_flatten(grad(lambda *a, k=k: _entry(grad(f, argnums)(*a), k), argnums)(*args))
                for k in range(n)]
        return g, np.array(rows), ""

    def forward():
        g = np.array([jvp(f, args, _basis(args, k))[1] for k in range(n)], dtype=float)
        if order == 1:
            return g, None, ""
        h = np.array([[jvp(lambda *a, k=k: jvp(f, a, _basis(args, k))[1], args,
                           _basis(args, j))[1] for k in range(n)] for j in range(n)], dtype=float)
        return g, h, ""

    def symbolic_reference():
        with _deadline(SYMBOLIC_SECONDS):
            return exact()

    def exact():
        nonlocal traced, kinks
        traced = symbolic.trace(f, *args, names=names)
        point = symbolic.exact_point(traced, args)
        grad_exprs = symbolic.gradient(traced)
        g = np.array([symbolic.evaluate(e, point) for e in grad_exprs])
        h = None
        if order == 2:
            h = np.array([[symbolic.evaluate(e, point) for e in row]
                          for row in symbolic.hessian(traced, grad_exprs)])
        kinks = tuple(symbolic.kinks(traced, args, grad_exprs))
        return g, h, ""

    errors = {}

    def numerical(name, derivative, hessian):
        def compute():
            d = derivative(f, args, argnums)
            if not d.applicable:
                return None, None, d.reason
            errors[name] = _flatten(d.error)
            h = None
            if order == 2:
                hess = hessian(f, args, argnums)
                h = np.asarray(hess.value, dtype=float)
                errors[f"{name}_hessian"] = np.asarray(hess.error, dtype=float)
            return _flatten(d.value), h, d.reason

        return compute

    central = numerical("central", numeric.central_difference, numeric.hessian)
    complex_step = numerical("complex_step", numeric.complex_step, numeric.complex_step_hessian)

    for name, compute in (("reverse", reverse), ("forward", forward),
                          ("symbolic", symbolic_reference), ("central", central),
                          ("complex_step", complex_step)):
        results[name] = _run(name, compute)

    value = _value(f, args)
    reference = next(m for m in ("symbolic", "complex_step", "central")
                     if results[m].applicable)
    notes = []
    if reference != "symbolic":
        notes.append(f"no symbolic reference ({results['symbolic'].note}); "
                     f"errors are measured against {reference}")
    ref = results[reference]
    judged = {name: _judge(m, ref, errors, kinks, rtol, atol) for name, m in results.items()}
    agree = all(m.agree for m in judged.values() if m.applicable)
    agree = agree and judged["reverse"].applicable
    if any(not np.all(np.isfinite(m.gradient)) for m in judged.values()
           if m.gradient is not None):
        notes.append("some derivatives are not finite (inf or nan) at this point")
    return Comparison(flat_names, tuple(_flatten(args)), value, order, reference, judged,
                      agree, kinks, tuple(notes))


@contextmanager
def _deadline(seconds):
    """Raise TimeoutError in the block after `seconds` (POSIX main thread; else no limit)."""
    in_main = threading.current_thread() is threading.main_thread()
    if not hasattr(signal, "setitimer") or not in_main:
        yield
        return

    def expire(signum, frame):
        raise TimeoutError(f"exact evaluation gave up after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _noise(f, args, argnums, gradient):
    """Largest change of the reverse gradient when the inputs move by a few ulps (seeded)."""
    rng = np.random.default_rng(0)
    spread = np.zeros_like(gradient)
    for _ in range(NOISE_SAMPLES):
        moved = [_nudge(a, rng) for a in args]
        try:
            other = _flatten(grad(f, argnums)(*moved))
        except Exception:
            return spread
        with np.errstate(all="ignore"):
            change = np.abs(other - gradient)
        spread = np.fmax(spread, np.where(np.isfinite(change), change, 0.0))
    return spread


def _nudge(a, rng):
    signs = rng.choice([-1.0, 1.0], size=np.shape(a))
    moved = np.asarray(a) * (1 + signs * NOISE_ULPS * EPS)
    return float(moved) if np.ndim(a) == 0 else moved


def _entry(parts, k):
    """Entry k of the parts flattened and joined; traced entries stay traced."""
    for p in parts:
        size = int(np.prod(shape_of(p)))
        if k < size:
            return p if shape_of(p) == () else ops.reshape(p, shape=(-1,))[k]
        k -= size
    raise IndexError(k)


def _value(f, args):
    try:
        out = f(*args)
        return float(np.real(out))
    except Exception:
        return math.nan


def _errors(values, reference):
    """Entrywise absolute and relative errors; equal entries (inf == inf, nan/nan) count 0."""
    with np.errstate(all="ignore"):
        diff = np.abs(values - reference)
        same = (values == reference) | (np.isnan(values) & np.isnan(reference))
        diff = np.where(same, 0.0, diff)
        rel = np.where(diff == 0, 0.0, diff / np.abs(reference))
    return diff, rel


def _within(values, reference, diff, allowed):
    """Entrywise verdict; where the exact derivative is not finite (1/x at 0), any non-finite
    answer is right."""
    ok = np.where(np.isnan(diff), False, diff <= allowed)
    return np.where(np.isfinite(reference), ok, ~np.isfinite(values))


def _judge(m, ref, errors, kinks, rtol, atol):
    """Fill in a method's errors against the reference and its verdict."""
    if not m.applicable or ref.gradient is None:
        return m
    diff, rel = _errors(m.gradient, ref.gradient)
    if rtol is not None or atol is not None:  # the user's tolerance, and nothing else
        tol = htol = Tolerance(rtol=0.0 if rtol is None else rtol,
                               atol=0.0 if atol is None else atol)
        allowed = tol.atol + tol.rtol * np.abs(ref.gradient)
    else:
        tol = TOLERANCES[m.name]
        htol = HESSIAN_TOLERANCES.get(m.name, tol)
        allowed = _allowed(tol, ref.gradient)
        spread = errors.get("central" if m.name == "central" else "noise", 0.0)
        allowed = allowed + ERROR_FACTOR * np.nan_to_num(spread, nan=0.0)
    ok = _within(m.gradient, ref.gradient, diff, allowed)
    note = m.note
    if m.name == "central" and not all(k.differentiable for k in kinks):
        ok = ok | _between_sides(m.gradient, kinks, allowed)
        note = note or "the point is on a kink: central differences average the two sides"
    agree = bool(np.all(ok))
    if m.hessian is not None and ref.hessian is not None:
        hdiff, _ = _errors(m.hessian, ref.hessian)
        hallowed = htol.atol + htol.rtol * np.abs(ref.hessian)
        if rtol is None and atol is None:
            hallowed = _allowed(htol, ref.hessian) + ERROR_FACTOR * np.nan_to_num(
                errors.get(f"{m.name}_hessian", 0.0), nan=0.0)
        agree = agree and bool(np.all(_within(m.hessian, ref.hessian, hdiff, hallowed)))
    return MethodResult(m.name, m.gradient, m.hessian, _max(diff), _max(rel), agree,
                        m.applicable, note, m.seconds)


def _allowed(tol, reference):
    scale = np.nanmax(np.abs(np.where(np.isfinite(reference), reference, 0.0)), initial=0.0)
    return tol.atol + tol.rtol * np.abs(reference) + FLOOR * EPS * scale


def _between_sides(values, kinks, allowed):
    """True where a value lies between the left and right derivatives of a kink."""
    ok = np.zeros(len(values), dtype=bool)
    for k in kinks:
        lo = np.minimum(k.left, k.right) - allowed
        hi = np.maximum(k.left, k.right) + allowed
        ok |= (values >= lo) & (values <= hi)
    return ok


def _max(x) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.max(x)) if x.size and not np.all(np.isnan(x)) else math.nan
