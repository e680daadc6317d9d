"""Run every method of differentiation at one point, measure each against the high-precision
reference entry by entry, and decide agreement: a method is blamed only when proven wrong."""

from __future__ import annotations

import itertools
import math
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from tabulate import tabulate

from diffkit import numeric, ops, reference
from diffkit.arguments import check_input
from diffkit.core import shape_of
from diffkit.errors import InputError, first_line
from diffkit.expression import Expression
from diffkit.forward import jvp
from diffkit.reverse import grad
from diffkit.symbolic import flat_names
from diffkit.tolerance import Tolerance

METHODS = ("reverse", "forward", "symbolic", "central", "complex_step")
EPS = float(np.finfo(float).eps)

# Expected accuracy of each method, as (rtol, atol). A method agrees with the reference on an
# entry when it is within atol + rtol * |reference| + FLOOR * eps * max|reference| of it, plus
# the reference's own error bound; the floor allows a few ulps of the largest entry in the small
# ones (rounding in sums of large terms). Central differences add ERROR_FACTOR times their own
# error estimate (Richardson's) entry by entry; AD and the complex step ERROR_FACTOR times their
# rounding noise.
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
# A safety net, not a working limit: the reference is linear in graph size, but a pathological
# expression (exp(exp(exp(...))) at 300 digits) may still take long; past this the entries are
# judged by the consensus of the other methods.
SYMBOLIC_SECONDS = 30.0
# Rounding noise of the AD and complex-step gradients: their spread when every input moves by a
# few ulps. Cancellation (1e8 e^x - (1e8 - 1) e^x) shows up there as a large spread, a wrong
# rule does not.
NOISE_ULPS = 4
NOISE_SAMPLES = 4
NUMERICAL = ("central", "complex_step")


@dataclass(frozen=True)
class MethodResult:
    """One method's derivatives at the point (flat over the variables) and their errors.

    `wrong` lists the flat positions of the gradient entries proven wrong (`hessian_wrong`:
    (row, column) pairs); `agree` is True when there are none.
    """

    name: str
    gradient: np.ndarray | None
    hessian: np.ndarray | None = None
    max_abs_error: float = math.nan
    max_rel_error: float = math.nan
    agree: bool = False
    applicable: bool = True
    note: str = ""
    seconds: float = 0.0
    wrong: tuple = ()
    hessian_wrong: tuple = ()


@dataclass(frozen=True)
class Comparison:
    """Every method side by side at one point; `agree` is the verdict.

    `names` and `point` are flat (an array argument contributes one entry per element); every
    gradient is a vector and every Hessian a matrix over them. `reference` is 'symbolic' (the
    high-precision reference) or 'consensus' (no reference: the methods that agree with each
    other decide); `status` says per gradient entry how it was judged, `hessian_status` (order
    2, rows of entries) per Hessian entry.
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
    status: tuple = ()
    digits: float = math.nan
    bounds: tuple = ()  # per gradient entry, (low, high): the values the reference accepts
    hessian_status: tuple = ()  # 'kink': any value between the one-sided second derivatives

    @property
    def differentiable(self) -> bool:
        """False when the point sits on a kink with different left and right derivatives."""
        return all(k.differentiable for k in self.kinks)

    def table(self, fmt: str = "simple") -> str:
        """Return the comparison as a table: one row per method, one column per variable."""
        rows = []
        for m in self.methods.values():
            if m.name == "symbolic" and m.gradient is not None:
                shown = [_reference_cell(self, k) for k in range(len(self.names))]
            else:
                shown = [_number(v) for v in m.gradient] if m.gradient is not None else []
            shown += [""] * (len(self.names) - len(shown))
            rows.append([m.name, *shown, _number(m.max_abs_error), _number(m.max_rel_error),
                         _verdict(m), m.note])
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
            verdict = _verdict(m, hessian=True)
            wrong = ", ".join(f"({self.names[i]}, {self.names[j]})"
                              for i, j in m.hessian_wrong[:4])
            rows.append([m.name, verdict, wrong])
        return "\nHessian\n" + tabulate(rows, headers=["method", "verdict", "wrong entries"],
                                        tablefmt=fmt, disable_numparse=True)

    def summary(self) -> list[str]:
        """One-line verdict, then notes on kinks and non-finite values."""
        verdict = "all methods agree" if self.agree else "the methods DISAGREE"
        source = self.reference
        if self.reference == "symbolic" and not math.isnan(self.digits):
            source += (f", {reference.DIGITS}+ digits" if self.digits >= reference.DIGITS
                       else f", {max(0, int(self.digits))} digits proven")
        lines = [f"{verdict} (reference: {source}; value {_number(self.value)})"]
        lines += self.blame(hessian=False, limit=6)  # the Hessian table shows its own
        for k in self.kinks:
            if not k.differentiable:
                lines.append(
                    f"not differentiable here: {k.node}; left derivative {_vector(k.left)}, "
                    f"right derivative {_vector(k.right)}; any value between them is a "
                    f"convention, not an error"
                )
        lines.extend(self.notes)
        return lines

    def blame(self, hessian: bool = True, limit: int | None = None) -> list[str]:
        """One line per method proven wrong, naming its wrong gradient entries (at most
        `limit` names) and, with `hessian`, another for its wrong Hessian entries.

        Example:
            >>> import diffkit as dk
            >>> compare(lambda x: dk.relu(x) - dk.relu(-x), 0.0).blame()
            ['reverse is wrong in d/d(x0)', 'forward is wrong in d/d(x0)']
        """
        lines = []
        for m in self.methods.values():
            if m.wrong:
                names = ", ".join(self.names[k] for k in m.wrong[:limit])
                lines.append(f"{m.name} is wrong in d/d({names})")
            if hessian and m.hessian_wrong:
                entries = ", ".join(f"({self.names[i]}, {self.names[j]})"
                                    for i, j in m.hessian_wrong)
                lines.append(f"{m.name} Hessian is wrong in {entries}")
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
            "digits": None if not math.isfinite(self.digits) else self.digits,
            "status": dict(zip(names, self.status)),
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
            measured = m.name != "symbolic"  # the reference is not measured against itself
            out["methods"][m.name] = {
                "max_abs_error": clean(m.max_abs_error, f"the {m.name} error") if measured
                else None,
                "max_rel_error": clean(m.max_rel_error, f"the {m.name} relative error")
                if measured else None,
                "agree": bool(m.agree),
                "applicable": bool(m.applicable),
                "note": m.note,
                "wrong": [names[k] for k in m.wrong],
                "hessian_wrong": [[names[i], names[j]] for i, j in m.hessian_wrong],
            }
        if self.order == 2:
            out["hessian"] = {
                m.name: None if m.hessian is None else clean(m.hessian, f"the {m.name} Hessian")
                for m in self.methods.values()
            }
        out["notes"] = list(dict.fromkeys(n for n in notes if n))
        return out


def _verdict(m, hessian=False):
    if not m.applicable:
        return "n/a"
    wrong = m.hessian_wrong if hessian else m.wrong
    if m.name == "symbolic":
        return "reference"
    return "DISAGREE" if wrong else "agree"


def _reference_cell(c, k):
    status = c.status[k] if k < len(c.status) else "exact"
    m = c.methods["symbolic"]
    if status == "kink":
        low, high = c.bounds[k]
        return f"[{_number(low)}, {_number(high)}]"
    if status == "undefined":
        return "none (jump)"
    return _number(m.gradient[k])


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


# ---- the methods: each returns a _Raw (values, and what widens its tolerance) ----


@dataclass(frozen=True)
class _Raw:
    gradient: np.ndarray | None
    hessian: np.ndarray | None = None
    note: str = ""
    spread: object = 0.0  # per gradient entry: rounding noise or the method's error estimate
    hessian_spread: object = 0.0


def _reverse(f, args, argnums, order):
    g = _flatten(grad(f, argnums)(*args))
    h = None
    if order == 2:
        n = g.size
        h = np.array([_flatten(grad(lambda *a, k=k: _entry(grad(f, argnums)(*a), k),
                                    argnums)(*args)) for k in range(n)])
    return _Raw(g, h, spread=_noise(f, args, argnums, g))


def _forward(f, args, order):
    """Forward mode, one JVP per flat input (all of them in one batched pass when f
    broadcasts). For scalar arguments each JVP moves one input only, the others constants, so
    that an infinite partial of an input that does not move (d/dx x**y at x = 0) cannot turn
    0 * inf into nan."""
    n = sum(int(np.prod(np.shape(a))) for a in args)
    if n > 1 and numeric.broadcasts(f, args):
        raw = _forward_batched(f, args, n, order)
        if np.all(np.isfinite(raw.gradient)) and (
                raw.hessian is None or np.all(np.isfinite(raw.hessian))):
            return raw
    if all(type(a) is float for a in args):
        return _forward_scalars(f, args, order)
    g = np.array([jvp(f, args, _basis(args, k))[1] for k in range(n)], dtype=float)
    h = None
    if order == 2:
        h = np.array([[jvp(lambda *a, k=k: jvp(f, a, _basis(args, k))[1], args,
                           _basis(args, j))[1] for k in range(n)] for j in range(n)],
                     dtype=float)
    return _Raw(g, h)


def _moved(args, k, x):
    return args[:k] + (x,) + args[k + 1:]


def _forward_scalars(f, args, order):
    """JVPs of f of floats along one argument at a time (order 2: nested, the outer along
    argument j, the inner along k at the outer's point)."""
    n = len(args)

    def first(base, k, at):
        return jvp(lambda x: f(*_moved(base, k, x)), (at,), (1.0,))[1]

    g = np.array([first(args, k, args[k]) for k in range(n)], dtype=float)
    h = None
    if order == 2:
        h = np.array([[jvp(lambda y, j=j, k=k: first(_moved(args, j, y), k,
                                                     y if j == k else args[k]),
                           (args[j],), (1.0,))[1] for k in range(n)] for j in range(n)],
                     dtype=float)
    return _Raw(g, h)


def _forward_batched(f, args, n, order):
    """Every JVP in one pass: the point repeated along a batch axis, tangent k along entry k
    (order 2: an n x n grid, the outer tangent along the rows, the inner along the columns)."""
    eye = np.eye(n)
    primals = [np.full(n, a) for a in args]
    g = np.asarray(jvp(f, primals, [eye[:, i] for i in range(n)])[1], dtype=float)
    h = None
    if order == 2:
        grid = [np.full((n, n), a) for a in args]
        inner = [np.broadcast_to(eye[i][None, :], (n, n)).copy() for i in range(n)]
        outer = [np.broadcast_to(eye[i][:, None], (n, n)).copy() for i in range(n)]
        h = np.asarray(jvp(lambda *a: jvp(f, a, inner)[1], grid, outer)[1], dtype=float)
    return _Raw(np.broadcast_to(g, (n,)).copy(), None if h is None else
                np.broadcast_to(h, (n, n)).copy())


def _numerical(derivative, hessian, f, args, argnums, order):
    """A numerical method's values; an element it cannot resolve is nan (scheme "none": not
    applicable there, with the reason in the note), and the method is n/a only when no element
    is resolved."""
    d = derivative(f, args, argnums)
    g = _flatten(d.value)
    if np.all(np.isnan(g)):
        raise _NotApplicable(d.reason or f"{d.method} resolves no derivative here")
    h = hspread = None
    notes = [d.reason]
    if order == 2:
        hess = hessian(f, args, argnums)
        h = np.asarray(hess.value, dtype=float)
        hspread = np.asarray(hess.error, dtype=float)
        notes.append(hess.reason)
    return _Raw(g, h, "; ".join(n for n in dict.fromkeys(notes) if n), _flatten(d.error),
                hspread)


class _NotApplicable(Exception):
    """A method that does not apply to this function or point (the message says why)."""


def _run(name, compute):
    """Call compute() -> _Raw; an exception makes the method n/a. Returns (MethodResult, raw)."""
    start = time.perf_counter()
    raw, applicable, note = None, True, ""
    try:
        raw = compute()
        note = raw.note
    except (Exception, _Timeout) as error:  # a method that cannot run is reported, never fatal
        applicable = False
        message = first_line(error)
        plain = (_NotApplicable, _Timeout, reference.Unavailable)
        note = message if isinstance(error, plain) else (
            f"{type(error).__name__}: {message}")
    result = MethodResult(name, None if raw is None else raw.gradient,
                          None if raw is None else raw.hessian, applicable=applicable, note=note,
                          seconds=time.perf_counter() - start)
    return result, raw


def compare(f, *args, names=None, order: int = 1, rtol: float | None = None,
            atol: float | None = None) -> Comparison:
    """Differentiate f at args by every method and judge each against the reference.

    f is a function written with diffkit ops (or a parsed Expression, whose variables give
    `names`); args are floats or float arrays; f must return a scalar. `order=2` adds Hessians.
    By default each method has its own tolerance (TOLERANCES, widened by its error estimate or
    rounding noise, plus the reference's own error bound); `rtol` and `atol`, when given,
    replace the method's part by |method - reference| <= atol + rtol |reference|.

    Example:
        >>> import diffkit as dk
        >>> c = compare(lambda x, w, b: 1 / (1 + dk.exp(-(w * x + b))), 1.0, 0.0, 0.0)
        >>> c.agree, [float(g) for g in c.methods["reverse"].gradient]
        (True, [0.0, 0.25, 0.25])
    """
    if isinstance(order, bool) or order not in (1, 2):
        raise InputError(f"order must be 1 or 2, not {order!r}")
    if isinstance(f, Expression):
        names = f.variables if names is None else names
        f = f.function
    if not callable(f):
        raise InputError(f"compare needs a function; got {type(f).__name__}")
    args = tuple(check_input(a, k) for k, a in enumerate(args))
    if not args:
        raise InputError("compare needs the point: at least one argument after f")
    names = tuple(names) if names is not None else tuple(f"x{k}" for k in range(len(args)))
    if len(names) != len(args):
        raise InputError(f"got {len(names)} names for {len(args)} arguments")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        value = _value(f, args)
        return _compare(f, args, names, order, rtol, atol, value)


def _compare(f, args, names, order, rtol, atol, value):
    flat = tuple(flat_names(names, [np.shape(a) for a in args]))
    argnums = tuple(range(len(args)))
    symbolic_out = {}

    def symbolic():
        with _deadline(SYMBOLIC_SECONDS):
            ref = reference.compute(f, args, names, order)
        symbolic_out["reference"] = ref
        return _Raw(ref.gradient, ref.hessian, "; ".join(ref.notes))

    computations = {
        "reverse": lambda: _reverse(f, args, argnums, order),
        "forward": lambda: _forward(f, args, order),
        "symbolic": symbolic,
        "central": lambda: _numerical(numeric.central_difference, numeric.hessian, f, args,
                                      argnums, order),
        "complex_step": lambda: _numerical(numeric.complex_step, numeric.complex_step_hessian,
                                           f, args, argnums, order),
    }
    results, raws = {}, {}
    for name, compute in computations.items():
        results[name], raws[name] = _run(name, compute)
    ref = symbolic_out.get("reference")
    notes = []
    if ref is None:
        notes.append(f"no symbolic reference ({results['symbolic'].note}); each entry is "
                     f"judged by the consensus of the other methods")
    judge = _Judge(results, raws, ref, rtol, atol)
    judged = judge.methods(order)
    notes.extend(judge.notes)
    if judge.resolution > 1e-8:
        notes.append(f"decided by the consensus of methods resolving only about "
                     f"{judge.resolution:.0e} relative: a smaller error would not be seen")
    agree = all(m.agree for m in judged.values() if m.applicable)
    agree = agree and judged["reverse"].applicable and not judge.conflicts
    # a numerical method's nan is an entry it cannot resolve (its note says why), not a value
    if any(m.gradient is not None and not np.all(np.isfinite(m.gradient))
           for m in judged.values() if m.name in ("reverse", "forward")) or (
            ref is not None and not np.all(np.isfinite(ref.gradient[
                [s in ("exact", "limit") for s in ref.status]]))):
        notes.append("some derivatives are not finite (inf or nan) at this point")
    n = len(flat)
    status = ref.status if ref is not None else ("none",) * n
    return Comparison(flat, tuple(_flatten(args)), value, order,
                      "symbolic" if ref is not None else "consensus", judged, agree,
                      () if ref is None else ref.kinks, tuple(dict.fromkeys(notes)),
                      tuple(status), math.nan if ref is None else ref.digits,
                      () if ref is None else tuple(zip(ref.low.tolist(), ref.high.tolist())),
                      () if ref is None or ref.hessian_status is None else ref.hessian_status)


class _Timeout(BaseException):
    """Raised inside the symbolic reference when it runs past SYMBOLIC_SECONDS."""


@contextmanager
def _deadline(seconds):
    """Raise _Timeout in the block after `seconds` (POSIX main thread; else no limit)."""
    in_main = threading.current_thread() is threading.main_thread()
    if not hasattr(signal, "setitimer") or not in_main:
        yield
        return

    def expire(signum, frame):
        raise _Timeout(f"the exact evaluation gave up after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ---- the verdict ----


@dataclass(frozen=True)
class _Entry:
    """The reference for one entry: status, value, error bound, and the interval of values
    that are right (a kink's one-sided derivatives)."""

    status: str
    value: float = math.nan
    error: float = 0.0
    low: float = math.nan
    high: float = math.nan
    others: tuple = ()  # the exact values with a switch decided as a few ulps away


class _Judge:
    """Judges every method entry by entry against the reference (or the consensus)."""

    def __init__(self, results, raws, ref, rtol, atol):
        self.results, self.raws, self.ref = results, raws, ref
        self.user = None if rtol is None and atol is None else Tolerance(
            rtol=0.0 if rtol is None else rtol, atol=0.0 if atol is None else atol)
        self.notes = []
        self.conflicts = []  # entries where methods disagree and nothing decides between them
        self.resolution = 0.0  # the loosest relative tolerance of a deciding consensus

    def methods(self, order):
        gradient = self._judge_all(hessian=False)
        hessian = self._judge_all(hessian=True) if order == 2 else {}
        out = {}
        for name, m in self.results.items():
            wrong, abs_err, rel_err = gradient.get(name, ((), math.nan, math.nan))
            hwrong = hessian.get(name, ((),))[0]
            out[name] = MethodResult(
                name, m.gradient, m.hessian, abs_err, rel_err,
                m.applicable and not wrong and not hwrong, m.applicable, m.note, m.seconds,
                tuple(wrong), tuple(hwrong))
        return out

    def _entries(self, hessian):
        ref = self.ref
        if ref is None:
            return None
        if hessian:
            others = [np.ravel(h) for _, h in ref.alternatives]
            status, value, error, low, high = (np.ravel(np.array(ref.hessian_status)),
                                               np.ravel(ref.hessian), np.ravel(ref.hessian_error),
                                               np.ravel(ref.hessian_low),
                                               np.ravel(ref.hessian_high))
        else:
            others = [g for g, _ in ref.alternatives]
            status, value, error, low, high = (ref.status, ref.gradient, ref.error, ref.low,
                                               ref.high)
        return [_Entry(status[k], value[k], error[k], low[k], high[k],
                       tuple(o[k] for o in others if o[k] != value[k] and not math.isnan(o[k])))
                for k in range(len(value))]

    def _candidates(self, hessian, entries):
        """name -> (flat values, extra allowance per entry) of each method that ran."""
        out = {}
        # a switch at or a few ulps from the point: ulp-nudges may cross it, so their spread is
        # not rounding noise; the kink's interval or the switched values stand in for it
        near_switch = self.ref is not None and (self.ref.kinks or self.ref.alternatives)
        switched = list(range(len(entries or ()))) if near_switch else []
        for name, m in self.results.items():
            if name == "symbolic" or not m.applicable:
                continue
            values = m.hessian if hessian else m.gradient
            if values is None:
                continue
            raw = self.raws[name]
            spread = raw.hessian_spread if hessian else raw.spread
            if name in ("forward", "complex_step") and not hessian:
                spread = self.raws["reverse"].spread if self.raws["reverse"] else 0.0
            values = np.ravel(np.asarray(values, dtype=float))
            spread = np.broadcast_to(np.nan_to_num(np.ravel(np.asarray(
                0.0 if spread is None else spread, dtype=float)), nan=0.0), values.shape)
            if switched and name != "central":
                spread = spread.copy()
                spread[switched] = 0.0  # a switch a few ulps away, not rounding: see _Entry
            out[name] = (values, spread)
        return out

    def _allowed(self, name, hessian, reference_values, spread, magnitude=0.0):
        """Per-entry allowance of a method around reference values (an array): its tolerance,
        a few ulps of the largest entry and of the terms the chain rule sums (`magnitude`),
        and ERROR_FACTOR times its own noise or error estimate."""
        if self.user is not None:
            return self.user.atol + self.user.rtol * np.abs(reference_values)
        table = HESSIAN_TOLERANCES if hessian else {}
        tol = table.get(name, TOLERANCES[name])
        finite = np.where(np.isfinite(reference_values), np.abs(reference_values), 0.0)
        scale = float(np.max(finite, initial=0.0))
        return (tol.atol + tol.rtol * finite + FLOOR * EPS * np.maximum(scale, magnitude)
                + ERROR_FACTOR * spread)

    def _magnitude(self, hessian, size):
        ref = self.ref
        if ref is None:
            return np.zeros(size)
        return np.ravel(ref.hessian_magnitude) if hessian else ref.magnitude

    def _judge_all(self, hessian):
        """name -> (wrong positions, max abs error, max rel error) over the gradient or the
        Hessian (positions as (row, column) for the Hessian)."""
        entries = self._entries(hessian)
        candidates = self._candidates(hessian, entries)
        if not candidates:
            return {}
        size = len(next(iter(candidates.values()))[0])
        entries = entries or [_Entry("none")] * size
        centre = np.array([e.value if e.status in ("exact", "limit") else
                           (e.low + e.high) / 2 if e.status == "kink" else math.nan
                           for e in entries])
        consensus = {}
        undecided = []
        for k, e in enumerate(entries):
            if e.status == "none":
                value, verdicts = self._consensus(candidates, k, hessian)
                centre[k] = value
                consensus[k] = verdicts
                if verdicts is None:
                    undecided.append(k)
        out = {}
        magnitude = self._magnitude(hessian, size)
        for name, (values, spread) in candidates.items():
            allowed = self._allowed(name, hessian, centre, spread, magnitude)
            wrong, errors = [], []
            for k, e in enumerate(entries):
                v = values[k]
                ok, err = self._entry_ok(name, v, e, allowed[k], consensus.get(k))
                if not ok:
                    wrong.append(k)
                if err is not None:
                    errors.append((err, err / abs(centre[k]) if centre[k] else
                                   (0.0 if err == 0 else math.inf)))
            if hessian:
                n = int(round(math.sqrt(size)))
                wrong = [divmod(k, n) for k in wrong]
            abs_err = max((a for a, _ in errors), default=math.nan)
            rel_err = max((r for _, r in errors), default=math.nan)
            out[name] = (wrong, abs_err, rel_err)
        conflicts = [k for k in undecided if sum(
            math.isfinite(values[k]) for values, _ in candidates.values()) >= 2]
        self.conflicts += conflicts
        if conflicts:
            self.notes.append(f"{_entries(len(conflicts), hessian)} no reference, and the "
                              f"methods disagree with no majority to decide between them")
        elif undecided:
            self.notes.append(f"{_entries(len(undecided), hessian)} no reference and fewer "
                              f"than two finite answers: not judged")
        if not hessian and any(e.status == "undefined" for e in entries):
            self.notes.append("f jumps at this point: its derivative does not exist along "
                              "some variables, and no method is judged there")
        if hessian and any(e.status == "undefined" for e in entries):
            self.notes.append(f"{_entries(sum(e.status == 'undefined' for e in entries), True)}"
                              f" no second derivative here (the gradient is not differentiable "
                              f"at this point, or a switch sits at its switching point without "
                              f"moving to first order, as relu(x*y) at 0, 0): not judged")
        return out

    def _entry_ok(self, name, v, e, allowed, verdicts):
        """(right?, absolute error or None) of one method's value v on one entry."""
        numerical = name in NUMERICAL
        if e.status == "undefined":
            return True, None
        if e.status == "none":
            if verdicts is None:
                return True, None
            return verdicts.get(name, True), verdicts.get(("error", name))
        if math.isnan(v) and numerical:
            return True, None  # the method cannot resolve this entry; it says why in its note
        if e.status == "kink":
            low, high = e.low - allowed - e.error, e.high + allowed + e.error
            err = 0.0 if low <= v <= high else (
                min(abs(v - e.low), abs(v - e.high)) if math.isfinite(v) else math.inf)
            return bool(low <= v <= high), err
        if math.isinf(e.value):  # only that infinity is right: nan is no value, -inf not +inf
            return v == e.value, (0.0 if v == e.value else math.inf)
        if not math.isfinite(e.value):
            return (not math.isfinite(v)), (0.0 if not math.isfinite(v) else math.inf)
        if not math.isfinite(v):
            return False, math.inf
        # the exact value, or one of the exact values with a switch falling as a few ulps away;
        # a numerical method's stencil straddles that switch: anything between them
        candidates = (e.value, *e.others)
        if numerical and e.others:
            low, high = min(candidates), max(candidates)
            err = 0.0 if low <= v <= high else min(abs(v - low), abs(v - high))
        else:
            err = min(abs(v - c) for c in candidates)
        return bool(err <= allowed + e.error), abs(v - e.value)

    def _consensus(self, candidates, k, hessian):
        """(centre value, {name: right?, ('error', name): error}) from the largest group of
        independent answers that agree with each other within their tolerances; (nan, None)
        when no strict majority of at least two agrees, or two groups tie. Reverse and forward
        mode run two halves of the same rules, so when they agree they are one answer, 'AD'."""
        values = {name: vs[k] for name, (vs, _) in candidates.items() if math.isfinite(vs[k])}
        allow = {}
        for name, v in values.items():
            spread = candidates[name][1][k]
            allow[name] = float(self._allowed(name, hessian, np.array([v]),
                                              np.array([spread]))[0])
        votes = dict(values)
        members = {name: (name,) for name in values}
        if "reverse" in votes and "forward" in votes and abs(
                votes["reverse"] - votes["forward"]) <= allow["reverse"] + allow["forward"]:
            votes["AD"], members["AD"] = votes.pop("reverse"), ("reverse", "forward")
            del votes["forward"]
            allow["AD"] = max(allow["reverse"], allow["forward"])
        if len(votes) < 2:
            return math.nan, None
        names = list(votes)
        groups = []
        for size in range(len(names), 1, -1):
            groups = [group for group in itertools.combinations(names, size)
                      if all(abs(votes[a] - votes[b]) <= allow[a] + allow[b]
                             for a, b in itertools.combinations(group, 2))]
            if groups:
                break
        # two different largest groups (a wide tolerance bridging two answers): undecided
        if len(groups) != 1 or 2 * len(groups[0]) <= len(votes):
            return math.nan, None
        best = groups[0]
        self.resolution = max(self.resolution, max(
            allow[b] / abs(votes[b]) if votes[b] else 0.0 for b in best))
        centre = float(np.median([votes[name] for name in best]))
        agreeing = {m for b in best for m in members[b]}
        verdicts = {}
        for name in candidates:
            v = candidates[name][0][k]
            if name in agreeing:
                verdicts[name] = True
            elif not math.isfinite(v):
                verdicts[name] = name in NUMERICAL  # a numerical method may fail; AD may not
            else:  # wrong when it contradicts any member of the agreeing majority
                verdicts[name] = all(abs(v - votes[b]) <= allow[name] + allow[b] for b in best)
            verdicts[("error", name)] = abs(v - centre) if math.isfinite(v) else None
        return centre, verdicts


def _entries(count, hessian):
    kind = "Hessian" if hessian else "gradient"
    return f"1 {kind} entry has" if count == 1 else f"{count} {kind} entries have"


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
    """f's value at the point as a float (nan where f fails); InputError unless scalar."""
    try:
        out = f(*args)
    except Exception:
        return math.nan
    if isinstance(out, tuple):
        raise InputError(f"compare needs a scalar-valued f; f returned a tuple of {len(out)}: "
                         f"compare one output at a time (lambda *a: f(*a)[0])")
    if np.ndim(out) != 0 and np.size(out) != 1:
        raise InputError(f"compare needs a scalar-valued f; f returned shape {np.shape(out)}: "
                         f"compare a scalar function of it, e.g. dk.sum(f(x))")
    try:
        return float(np.real(np.reshape(out, ())))
    except (TypeError, ValueError):
        return math.nan
