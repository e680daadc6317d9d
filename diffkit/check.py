"""Check a claimed derivative (a hand-written gradient, Jacobian or Hessian) entry by entry against
the best reference diffkit can build for f: its 30-digit reference when f can be traced, else
Richardson central differences and the complex step; a Taylor remainder test either way."""

from __future__ import annotations

import inspect
import itertools
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from tabulate import tabulate

from diffkit import numeric, reference
from diffkit.arguments import check_input
from diffkit.compare import (
    EPS,
    ERROR_FACTOR,
    FLOOR,
    HESSIAN_TOLERANCES,
    NOISE_SAMPLES,
    NOISE_ULPS,
    TOLERANCES,
    compare,
)
from diffkit.errors import InputError
from diffkit.reverse import grad
from diffkit.tolerance import Tolerance

KINDS = ("gradient", "jacobian", "hessian")
VERDICTS = ("ok", "convention", "WRONG", "unchecked", "undefined")
# A claimed derivative is held to what reverse mode is held to: a hand-written float64 formula
# can be as accurate as AD, and is widened, like AD, by its own rounding noise.
CLAIMED = TOLERANCES["reverse"]
TAYLOR_STEPS = 30  # h = 0.1 * 2**-k, k < 30, along one seeded direction scaled by max(1, |x|)
TAYLOR_CLEAN = 100  # a residual counts when it exceeds its rounding noise this many times
SHOWN = 20  # table rows: every entry up to this many, else the entries that are not ok


@dataclass(frozen=True)
class Accepted:
    """What the reference accepts for one entry: `status` (exact, limit, kink, none, undefined
    as in reference.Reference), the best `value`, the interval [low, high] of right values (a
    kink's one-sided derivatives), the reference's own `error` bound, the chain rule's
    `magnitude` (scale of rounding in a method summing the same terms) and `others` (exact values
    with a switch a few ulps away decided the other way)."""

    status: str
    value: float
    low: float
    high: float
    error: float = 0.0
    magnitude: float = 0.0
    others: tuple = ()


def accepted(ref: reference.Reference, hessian: bool = False) -> list:
    """Return one Accepted per flat entry of the reference's gradient (or Hessian, row-major).

    Example:
        >>> import diffkit as dk
        >>> r = reference.compute(lambda x: dk.relu(x), (0.0,), ("x",))
        >>> a = accepted(r)[0]
        >>> a.status, a.low, a.high
        ('kink', 0.0, 1.0)
    """
    if hessian:
        parts = (np.ravel(ref.hessian), np.ravel(ref.hessian_low), np.ravel(ref.hessian_high),
                 np.ravel(ref.hessian_error), np.ravel(ref.hessian_magnitude))
        status = np.ravel(np.array(ref.hessian_status, dtype=object))
        others = [np.ravel(h) for _, h in ref.alternatives if h is not None]
    else:
        parts = (ref.gradient, ref.low, ref.high, ref.error, ref.magnitude)
        status = ref.status
        others = [g for g, _ in ref.alternatives]
    value, low, high, error, magnitude = (np.asarray(p, dtype=float) for p in parts)
    return [Accepted(str(status[k]), float(value[k]), float(low[k]), float(high[k]),
                     float(np.nan_to_num(error[k], nan=0.0)), float(magnitude[k]),
                     tuple(float(o[k]) for o in others
                           if o[k] != value[k] and not math.isnan(o[k])))
            for k in range(len(value))]


def allowance(tolerance: Tolerance, entries: list, spread=0.0, user: Tolerance | None = None):
    """Return, per entry, how far a method's value may lie from the accepted values: its
    tolerance (or the user's), FLOOR ulps of the largest entry and of the chain rule's terms,
    ERROR_FACTOR times its rounding noise or error estimate (`spread`), as compare allows."""
    centre = np.array([_centre(a) for a in entries])
    finite = np.where(np.isfinite(centre), np.abs(centre), 0.0)
    if user is not None:
        return user.atol + user.rtol * finite
    scale = float(np.max(finite, initial=0.0))
    magnitude = np.array([a.magnitude for a in entries])
    spread = np.nan_to_num(np.broadcast_to(np.asarray(spread, dtype=float), centre.shape), nan=0.0)
    return (tolerance.atol + tolerance.rtol * finite + FLOOR * EPS * np.maximum(scale, magnitude)
            + ERROR_FACTOR * spread)


def judge(value: float, entry: Accepted, allowed: float) -> tuple:
    """Return (verdict, distance from the accepted values) of one claimed value: 'ok',
    'convention' (inside a kink's interval), 'WRONG', 'undefined' (no derivative exists there:
    judged by nobody) or 'unchecked' (no reference for this entry).

    Example:
        >>> judge(0.5, Accepted("kink", math.nan, 0.0, 1.0), 1e-12)
        ('convention', 0.0)
    """
    if entry.status == "undefined":
        return "undefined", math.nan
    if entry.status == "none":
        return "unchecked", math.nan
    if entry.status == "kink":
        low, high = entry.low - allowed - entry.error, entry.high + allowed + entry.error
        inside = bool(low <= value <= high)
        distance = 0.0 if inside else (min(abs(value - entry.low), abs(value - entry.high))
                                       if math.isfinite(value) else math.inf)
        return ("convention" if inside else "WRONG"), distance
    if not math.isfinite(entry.value):
        same = value == entry.value
        return ("ok" if same else "WRONG"), (0.0 if same else math.inf)
    if not math.isfinite(value):
        return "WRONG", math.inf
    distance = min(abs(value - c) for c in (entry.value, *entry.others))
    return ("ok" if distance <= allowed + entry.error else "WRONG"), abs(value - entry.value)


def _centre(a: Accepted) -> float:
    if a.status == "kink":
        return (a.low + a.high) / 2
    return a.value if a.status in ("exact", "limit") else math.nan


# ---- the result ----


@dataclass(frozen=True)
class Entry:
    """One entry of the claimed derivative and its verdict.

    `argument` and `index` name the input (its name and the index inside it, () for a scalar);
    `output` the output index (Jacobians), `argument2`/`index2` the second input (Hessians).
    `expected` is the reference value (a kink's mid-point; [low, high] the values accepted),
    `error` the distance of `claimed` from the accepted values, `support` the methods whose own
    value here agrees with the reference.
    """

    label: str
    argument: str
    index: tuple
    claimed: float
    expected: float
    low: float
    high: float
    error: float
    relative: float
    verdict: str
    support: tuple = ()
    output: tuple | None = None
    argument2: str | None = None
    index2: tuple | None = None


@dataclass(frozen=True)
class Method:
    """One method's part in the verdict: `role` is 'reference', 'method' (an independent
    derivative measured against the reference) or 'taylor'; `agrees` says whether it agrees with
    the reference (for the Taylor test: whether its observed order says the claim is right)."""

    name: str
    role: str
    applicable: bool
    agrees: bool
    note: str = ""


@dataclass(frozen=True)
class Taylor:
    """The Taylor remainder test along one seeded direction d: residuals r(h) of
    |f(x + h d) - f(x) - h <g, d>| (Jacobians: the largest entry; Hessians: the symmetric
    |f(x + h d) + f(x - h d) - 2 f(x) - h^2 d'Hd|) at steps h, and the observed order of r in
    h where it rises above rounding: `expected` for a right derivative (2; Hessians 4), 1 for a
    wrong gradient or Jacobian, 2 for a wrong Hessian. `order` is None when r stays at rounding
    level or the test is inconclusive (`note` says why)."""

    steps: tuple
    residuals: tuple
    order: float | None
    expected: int
    applicable: bool = True
    note: str = ""

    @property
    def wrong(self) -> bool:
        """True when the observed order is that of a wrong derivative: below halfway between
        the right order and the wrong one (1.5 for first derivatives, 3 for Hessians)."""
        if not self.applicable or self.order is None:
            return False
        return self.order < (3.0 if self.expected == 4 else 1.5)


@dataclass(frozen=True)
class Check:
    """A claimed derivative judged entry by entry; `agree` is the verdict.

    `reference` is 'symbolic' (f traced: the 30-digit reference), 'consensus' (f traced but no
    symbolic reference: AD and the numerical methods that agree) or 'numerical' (f a black box:
    Richardson central differences and the complex step). `wrong` lists the entries proven
    wrong; `support` the methods whose results back the verdict.
    """

    kind: str
    reference: str
    entries: tuple
    methods: dict
    taylor: Taylor | None
    agree: bool
    notes: tuple = field(default=())
    digits: float = math.nan

    @property
    def wrong(self) -> tuple:
        """The entries proven wrong."""
        return tuple(e for e in self.entries if e.verdict == "WRONG")

    @property
    def support(self) -> tuple:
        """Names of the methods whose results back the verdict."""
        names = [m.name for m in self.methods.values() if m.applicable and m.role != "taylor"
                 and (m.agrees or m.role == "reference")]
        if self.taylor is not None and self.taylor.applicable and self.taylor.order is not None:
            if self.taylor.wrong != self.agree:
                names.append("taylor")
        return tuple(names)

    def headline(self) -> str:
        """One line: the verdict, how many entries are wrong, and against what."""
        what = {"gradient": "gradient", "jacobian": "Jacobian", "hessian": "Hessian"}[self.kind]
        source = self.reference
        if self.reference == "symbolic" and not math.isnan(self.digits):
            source += (f", {reference.DIGITS}+ digits" if self.digits >= reference.DIGITS
                       else f", {max(0, int(self.digits))} digits proven")
        wrong = len(self.wrong)
        if self.agree:
            verdict = f"the claimed {what} is right"
        elif wrong:
            verdict = f"the claimed {what} is WRONG in {wrong} of {len(self.entries)} entries"
        else:
            verdict = f"the claimed {what} is not confirmed"
        support = ", ".join(self.support) or "nothing"
        return f"{verdict} (reference: {source}; supported by {support})"

    def table(self, fmt: str = "simple") -> str:
        """Return the verdict, the entries (all, or those not ok when there are many), the
        methods and the Taylor test as text."""
        shown = [e for e in self.entries if len(self.entries) <= SHOWN or e.verdict != "ok"]
        rows = [[e.label, _number(e.claimed), _expected(e), _number(e.error),
                 _number(e.relative), e.verdict, ", ".join(e.support)] for e in shown]
        lines = [self.headline(), "",
                 tabulate(rows, headers=["entry", "claimed", "reference", "abs error",
                                         "rel error", "verdict", "supported by"],
                          tablefmt=fmt, disable_numparse=True)]
        hidden = len(self.entries) - len(shown)
        if hidden:
            lines.append(f"... and {hidden} more entries, all ok")
        methods = [[m.name, m.role, _method_verdict(m), m.note] for m in self.methods.values()]
        lines += ["", tabulate(methods, headers=["method", "role", "verdict", "note"],
                               tablefmt=fmt, disable_numparse=True)]
        if self.taylor is not None:
            lines += ["", _taylor_line(self.taylor, self.kind)]
        lines += [n for n in self.notes if n]
        return "\n".join(lines)

    def __str__(self):
        return self.table()

    def _repr_markdown_(self):
        return self.table("github")

    def to_dict(self) -> dict:
        """Return a strict-JSON-ready dict (json.dumps(allow_nan=False) works); a number that is
        not finite is written as null and explained in `notes`."""
        notes = list(self.notes)

        def clean(x, where):
            if x is None:
                return None
            x = float(x)
            if not math.isfinite(x):
                notes.append(f"{where} is {x}; written as null")
                return None
            return x

        entries = []
        for e in self.entries:
            item = {"label": e.label, "argument": e.argument, "index": list(e.index),
                    "claimed": clean(e.claimed, f"the claimed {e.label}"),
                    "expected": clean(e.expected, f"the reference {e.label}"),
                    "low": clean(e.low, f"the lowest value accepted for {e.label}"),
                    "high": clean(e.high, f"the highest value accepted for {e.label}"),
                    "error": clean(e.error, f"the error of {e.label}"),
                    "relative_error": clean(e.relative, f"the relative error of {e.label}"),
                    "verdict": e.verdict, "support": list(e.support)}
            if e.output is not None:
                item["output"] = list(e.output)
            if e.argument2 is not None:
                item["argument2"], item["index2"] = e.argument2, list(e.index2)
            entries.append(item)
        taylor = None
        if self.taylor is not None:
            t = self.taylor
            taylor = {"order": None if t.order is None else clean(t.order, "the Taylor order"),
                      "expected_order": t.expected, "applicable": t.applicable, "wrong": t.wrong,
                      "steps": [clean(h, "a Taylor step") for h in t.steps],
                      "residuals": [clean(r, "a Taylor residual") for r in t.residuals],
                      "note": t.note}
        out = {
            "kind": self.kind,
            "reference": self.reference,
            "digits": self.digits if math.isfinite(self.digits) else None,
            "agree": bool(self.agree),
            "wrong": [e.label for e in self.wrong],
            "support": list(self.support),
            "entries": entries,
            "methods": {m.name: {"role": m.role, "applicable": m.applicable,
                                 "agrees": m.agrees, "note": m.note}
                        for m in self.methods.values()},
            "taylor": taylor,
        }
        out["notes"] = list(dict.fromkeys(n for n in notes if n))
        return out


def _number(x) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.10g}" if abs(x) >= 1e-4 or x == 0 else f"{x:.3e}"


def _expected(e: Entry) -> str:
    if e.low != e.high and math.isfinite(e.low) and math.isfinite(e.high):
        return f"[{_number(e.low)}, {_number(e.high)}]"
    return _number(e.expected)


def _method_verdict(m: Method) -> str:
    if not m.applicable:
        return "n/a"
    if m.role == "reference":
        return "reference"
    if m.role == "taylor":
        return "claim right" if m.agrees else "claim WRONG"
    return "agrees" if m.agrees else "DISAGREES"


def _taylor_line(t: Taylor, kind: str) -> str:
    right, wrong = t.expected, t.expected - 1 if kind != "hessian" else t.expected - 2
    kind = {"jacobian": "Jacobian", "hessian": "Hessian"}.get(kind, kind)
    head = "Taylor remainder test along a random direction: "
    if not t.applicable:
        return head + "n/a (" + t.note + ")"
    if t.order is None:
        return head + t.note
    return (head + f"observed order {t.order:.2f} (about {right} for a right {kind}, {wrong} for "
            f"a wrong one)" + (f"; {t.note}" if t.note else ""))


# ---- the checks ----


def check_grad(f, grad_f, *args, names=None, rtol=None, atol=None) -> Check:
    """Check grad_f, a claimed gradient of the scalar function f, at args.

    grad_f(*args) returns the gradient: shaped like the argument for one argument; one entry per
    argument (a tuple, or a flat vector over all of them) for several. Returns a Check whose
    `agree` is the verdict and whose `wrong` lists the entries proven wrong. `rtol`/`atol`,
    when given, replace the default tolerance |claimed - reference| <= atol + rtol |reference|.

    Example:
        >>> import numpy as np
        >>> f = lambda x: np.sum(x ** 3)
        >>> c = check_grad(f, lambda x: 3 * x ** 2 + np.array([0.0, 1.0]), np.array([1.0, 2.0]))
        >>> c.agree, [e.label for e in c.wrong]
        (False, ['x[1]'])
    """
    return _check("gradient", f, grad_f, args, names, rtol, atol)


def check_jacobian(f, jac_f, *args, names=None, rtol=None, atol=None) -> Check:
    """Check jac_f, a claimed Jacobian of the array-valued f, at args.

    jac_f(*args) returns, for one argument, an array shaped f's output shape + the argument's
    shape (or (outputs, inputs) flat); for several, one such array per argument, or one
    (outputs, all inputs) matrix. Returns a Check (see check_grad).

    Example:
        >>> import numpy as np
        >>> f = lambda x: np.array([x[0] * x[1], np.sin(x[0])])
        >>> jac = lambda x: np.array([[x[1], x[0]], [np.cos(x[0]), 0.0]])
        >>> check_jacobian(f, jac, np.array([0.5, 2.0])).agree
        True
    """
    return _check("jacobian", f, jac_f, args, names, rtol, atol)


def check_hessian(f, hess_f, *args, names=None, rtol=None, atol=None) -> Check:
    """Check hess_f, a claimed Hessian of the scalar function f, at args.

    hess_f(*args) returns, for one argument, an array shaped the argument's shape twice (an
    (n, n) matrix for a vector); for several, nested blocks H[i][j] or one (all, all) matrix.
    Returns a Check (see check_grad).

    Example:
        >>> check_hessian(lambda x, y: x * x * y, lambda x, y: [[2 * y, 2 * x], [2 * x, 0.0]],
        ...               1.0, 3.0).agree
        True
    """
    return _check("hessian", f, hess_f, args, names, rtol, atol)


@dataclass(frozen=True)
class _Layout:
    """The flat inputs (argument position, name, index) and the output indices (Jacobians)."""

    shapes: tuple
    names: tuple
    inputs: tuple
    outputs: tuple = ((),)
    out_shape: tuple = ()

    @property
    def size(self) -> int:
        return len(self.inputs)


def _check(kind, f, derivative, args, names, rtol, atol):
    if not callable(f) or not callable(derivative):
        raise InputError(f"check_{_short(kind)} needs f and its claimed derivative, both "
                         f"callable; got {type(f).__name__} and {type(derivative).__name__}")
    if not args:
        raise InputError(f"check_{_short(kind)} needs the point: at least one argument after "
                         f"the two functions")
    args = tuple(check_input(a, k) for k, a in enumerate(args))
    names = _names(f, len(args), names)
    user = None if rtol is None and atol is None else Tolerance(
        rtol=0.0 if rtol is None else float(rtol), atol=0.0 if atol is None else float(atol))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        layout = _layout(kind, f, args, names)
        claimed = _flat_claimed(kind, derivative(*args), layout)
        spread = _claimed_noise(kind, derivative, args, layout, claimed)
        return _verdict(kind, f, args, layout, claimed, spread, user)


def _short(kind):
    return {"gradient": "grad", "jacobian": "jacobian", "hessian": "hessian"}[kind]


def _names(f, count, names):
    if names is not None:
        names = tuple(str(n) for n in names)
        if len(names) != count:
            raise InputError(f"got {len(names)} names for {count} arguments")
        return names
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p.name for p in params
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= count and not positional[0].startswith("_"):
        return tuple(positional[:count])
    return tuple(f"x{k}" for k in range(count))


def _layout(kind, f, args, names):
    shapes = tuple(np.shape(a) for a in args)
    inputs = tuple((k, names[k], idx) for k, shape in enumerate(shapes)
                   for idx in np.ndindex(*shape))
    if kind != "jacobian":
        value = _plain(f(*args))
        if np.size(value) != 1:
            raise InputError(f"check_{_short(kind)} needs a scalar-valued f; f returned shape "
                             f"{np.shape(value)} (check_jacobian checks array-valued functions)")
        if not math.isfinite(float(np.real(np.reshape(value, ())))):
            raise InputError("f is not finite at the point; check the derivative at a point "
                             "where f has a value")
        return _Layout(shapes, names, inputs)
    value = np.asarray(_plain(f(*args)), dtype=float)
    if not np.all(np.isfinite(value)):
        raise InputError("f is not finite at the point; check the Jacobian at a point where "
                         "f has a value")
    return _Layout(shapes, names, inputs, tuple(np.ndindex(*value.shape)), value.shape)


def _plain(out):
    return out if np.ndim(out) or isinstance(out, float) else np.asarray(out)


def _flat_claimed(kind, claimed, layout):
    """The claimed derivative as a flat vector (gradient) or matrix (Jacobian: outputs x
    inputs; Hessian: inputs x inputs); InputError naming the expected shapes otherwise."""
    shapes, n, m = layout.shapes, layout.size, len(layout.outputs)
    try:
        if kind == "hessian":
            if len(shapes) == 1 and np.shape(claimed) == shapes[0] * 2:
                return np.asarray(claimed, dtype=float).reshape(n, n)
            if _blocks(claimed, shapes):
                return np.block([[np.asarray(claimed[i][j], dtype=float).reshape(
                    math.prod(shapes[i]), math.prod(shapes[j])) for j in range(len(shapes))]
                    for i in range(len(shapes))])
            if np.shape(claimed) == (n, n):
                return np.asarray(claimed, dtype=float)
            raise ValueError
        lead = layout.out_shape if kind == "jacobian" else ()
        flat_shape = (m, n) if kind == "jacobian" else (n,)
        if (isinstance(claimed, (tuple, list)) and len(claimed) == len(shapes)
                and all(np.shape(c) == lead + s for c, s in zip(claimed, shapes))):
            parts = [np.asarray(c, dtype=float).reshape(m, -1) for c in claimed]
            return np.concatenate(parts, axis=1).reshape(flat_shape)
        if len(shapes) == 1 and np.shape(claimed) == lead + shapes[0]:
            return np.asarray(claimed, dtype=float).reshape(flat_shape)
        if np.shape(claimed) == flat_shape:
            return np.asarray(claimed, dtype=float)
        raise ValueError
    except (ValueError, TypeError):
        raise InputError(_shape_message(kind, claimed, layout)) from None


def _blocks(claimed, shapes):
    if not isinstance(claimed, (tuple, list)) or len(claimed) != len(shapes) or len(shapes) < 2:
        return False
    return all(isinstance(row, (tuple, list, np.ndarray)) and len(row) == len(shapes)
               and all(np.size(row[j]) == math.prod(shapes[i]) * math.prod(shapes[j])
                       for j in range(len(shapes)))
               for i, row in enumerate(claimed))


def _shape_message(kind, claimed, layout):
    if isinstance(claimed, (tuple, list)):
        got = f"a {type(claimed).__name__} of {len(claimed)}"
    else:
        try:
            got = f"shape {np.shape(claimed)}"
        except ValueError:
            got = f"a ragged {type(claimed).__name__}"
    lead = layout.out_shape if kind == "jacobian" else ()
    shapes = [lead + s for s in layout.shapes]
    n = layout.size
    if kind == "hessian":
        want = f"shape {layout.shapes[0] * 2}" if len(shapes) == 1 else (
            f"shape ({n}, {n}) or one block per pair of arguments")
    elif len(shapes) == 1:
        want = f"shape {shapes[0]}"
    else:
        flat = (len(layout.outputs), n) if kind == "jacobian" else (n,)
        want = (f"one entry per argument, shaped {', '.join(str(e) for e in shapes)} "
                f"(or one array of shape {flat})")
    return f"the claimed {kind} has {got}; expected {want}"


def _nudged(args, rng):
    out = []
    for a in args:
        signs = rng.choice([-1.0, 1.0], size=np.shape(a))
        moved = np.asarray(a) * (1 + signs * NOISE_ULPS * EPS)
        out.append(float(moved) if np.ndim(a) == 0 else moved)
    return out


def _claimed_noise(kind, derivative, args, layout, claimed):
    """Largest change of the claimed derivative when the inputs move by a few ulps: its rounding
    noise (cancellation in the user's formula is noise, not an error)."""
    rng = np.random.default_rng(0)
    spread = np.zeros_like(claimed)
    for _ in range(NOISE_SAMPLES):
        try:
            other = _flat_claimed(kind, derivative(*_nudged(args, rng)), layout)
        except Exception:
            return spread
        change = np.abs(other - claimed)
        spread = np.fmax(spread, np.where(np.isfinite(change), change, 0.0))
    return spread


# ---- the verdict: one scalar function (f, or one output of f) at a time ----


@dataclass(frozen=True)
class _Row:
    """The verdict on one scalar function's derivative entries (a gradient, a Hessian, or one
    row of a Jacobian): per entry (verdict, expected, low, high, error, support), the methods
    (name -> (applicable, agrees, note)), the kind of reference and its digits."""

    verdicts: list
    methods: dict
    source: str
    digits: float = math.nan
    notes: tuple = ()
    kink: bool = False


def _verdict(kind, f, args, layout, claimed, spread, user):
    order = 2 if kind == "hessian" else 1
    traced = _traceable(f, args)
    if kind == "jacobian":
        rows = [_judge_scalar(_component(f, k), args, layout, claimed[k], spread[k], 1, user,
                              traced) for k in range(len(layout.outputs))]
    else:
        rows = [_judge_scalar(f, args, layout, claimed.reshape(-1), spread.reshape(-1), order,
                              user, traced)]
    entries = _entries(kind, layout, claimed, rows)
    methods = _methods(rows)
    kink = any(r.kink for r in rows)
    taylor = _taylor(kind, f, args, layout, claimed, kink)
    methods["taylor"] = Method("taylor", "taylor", taylor.applicable and taylor.order
                               is not None, not taylor.wrong, taylor.note)
    notes = [n for r in rows for n in r.notes]
    unchecked = [e for e in entries if e.verdict == "unchecked"]
    if unchecked:
        notes.append(f"{len(unchecked)} entries could not be checked (no reference there, and "
                     f"the other methods do not settle it): the claim is not confirmed")
    sources = {r.source for r in rows}
    source = "symbolic" if sources == {"symbolic"} else (
        "numerical" if "numerical" in sources else "consensus")
    # with a symbolic reference the reference decides; without one the Taylor test is one of
    # the methods, and a conclusive order of a wrong derivative is a proof
    taylor_decides = source != "symbolic" and taylor.wrong
    if taylor.wrong and not any(e.verdict == "WRONG" for e in entries):
        notes.append("the Taylor test finds the claimed derivative wrong along a random "
                     "direction although no single entry is proven wrong: small errors spread "
                     "over several entries" + ("" if taylor_decides else
                                               " (the symbolic reference decides)"))
    agree = not any(e.verdict in ("WRONG", "unchecked") for e in entries) and not taylor_decides
    digits = min((r.digits for r in rows if not math.isnan(r.digits)), default=math.nan)
    return Check(kind, source, tuple(entries), methods, taylor, agree,
                 tuple(dict.fromkeys(notes)), digits)


def _traceable(f, args) -> bool:
    """True when diffkit's reverse mode runs through f (diffkit ops or NumPy on traced values)."""
    try:
        grad(lambda *a: _scalar_part(f(*a)), tuple(range(len(args))))(*args)
    except Exception:
        return False
    return True


def _scalar_part(out):
    """A traced output's first entry: enough to see whether reverse mode runs through f."""
    if isinstance(out, (list, tuple)):
        return _flat_items(out)[0]
    return out if np.ndim(out) == 0 else out.reshape(-1)[0]


def _component(f, k):
    """Output k of f (C order over its output shape) as a scalar function."""

    def component(*args):
        out = f(*args)
        if isinstance(out, (list, tuple)):
            return _flat_items(out)[k]
        return out if np.ndim(out) == 0 else out.reshape(-1)[k]

    return component


def _flat_items(out):
    items = []
    for item in out:
        if isinstance(item, (list, tuple)):
            items.extend(_flat_items(item))
        elif np.ndim(item) == 0:
            items.append(item)
        else:
            items.extend(item.reshape(-1)[i] for i in range(int(np.size(item))))
    return items


def _judge_scalar(f, args, layout, claimed, spread, order, user, traced):
    """The verdict on the derivative entries of the scalar function f: against its symbolic
    reference when f is traced and has one, else against the methods that agree."""
    names = layout.names
    comparison = ref = None
    if traced:
        comparison = compare(f, *args, names=names, order=order)
        if comparison.reference == "symbolic":
            try:
                ref = reference.compute(f, args, names, order)
            except Exception:
                ref = None
    if ref is not None:
        return _against_reference(ref, comparison, claimed, spread, order, user)
    return _against_methods(f, args, comparison, claimed, spread, order, user)


def _against_reference(ref, comparison, claimed, spread, order, user):
    hessian = order == 2
    entries = accepted(ref, hessian)
    near_switch = bool(ref.kinks or ref.alternatives)
    allowed = allowance(CLAIMED, entries, 0.0 if near_switch else spread, user)
    n = len(comparison.names)
    others = {}
    for m in comparison.methods.values():
        values = m.hessian if hessian else m.gradient
        if m.name == "symbolic" or not m.applicable or values is None:
            continue
        wrong = ({i * n + j for i, j in m.hessian_wrong} if hessian else set(m.wrong))
        others[m.name] = (np.ravel(values), wrong)
    verdicts = []
    for k, (entry, value) in enumerate(zip(entries, claimed)):
        verdict, error = judge(float(value), entry, float(allowed[k]))
        support = ["symbolic"] if verdict not in ("undefined", "unchecked") else []
        support += [name for name, (values, wrong) in others.items()
                    if k not in wrong and math.isfinite(values[k])
                    and entry.status not in ("undefined", "none")]
        verdicts.append((verdict, _centre(entry), entry.low, entry.high, error, tuple(support)))
    methods = {"symbolic": (True, True, "; ".join(ref.notes))}
    for m in comparison.methods.values():
        if m.name != "symbolic":
            methods[m.name] = (m.applicable, m.agree, m.note)
    kink = any(hessian or not k.differentiable for k in ref.kinks)
    return _Row(verdicts, methods, "symbolic", ref.digits, (), kink)


@dataclass(frozen=True)
class _Witness:
    """An independent method's values over the entries (None: it resolves none), its error
    estimates, tolerance, note, and (central differences) which entries straddle a kink."""

    values: np.ndarray | None
    errors: object
    tolerance: Tolerance
    note: str = ""
    kink: np.ndarray | None = None

    def vote(self, k, at_kink):
        """(value, allowance) on entry k, or None where it has no finite value; at a kink the
        one-sided derivatives' half-difference (in `errors`) is the interval, not widened."""
        if self.values is None or not math.isfinite(self.values[k]):
            return None
        error = float(self.errors if np.ndim(self.errors) == 0 else self.errors[k])
        value = float(self.values[k])
        entry = [Accepted("exact", value, value, value)]
        if at_kink:
            return value, float(allowance(self.tolerance, entry)[0]) + error
        return value, float(allowance(self.tolerance, entry, error)[0])


def _witnesses(f, args, comparison, order):
    """name -> _Witness of the independent methods when there is no symbolic reference: AD
    (when f is traced) and the numerical methods with their error estimates."""
    out = {}
    argnums = tuple(range(len(args)))
    hessian = order == 2
    if comparison is not None:
        # reverse and forward mode run two halves of the same rules: one vote, reverse's
        m = comparison.methods["reverse"]
        values = m.hessian if hessian else m.gradient
        if m.applicable and values is not None:
            out["reverse"] = _Witness(np.ravel(np.asarray(values, dtype=float)), 0.0,
                                      TOLERANCES["reverse"], m.note)
    table = HESSIAN_TOLERANCES if hessian else TOLERANCES
    for name, method in (("central", numeric.hessian if hessian else numeric.central_difference),
                         ("complex_step", numeric.complex_step_hessian if hessian
                          else numeric.complex_step)):
        try:
            d = method(f, args, argnums)
        except Exception as error:  # a method that cannot run is reported, never fatal
            out[name] = _Witness(None, 0.0, table[name], f"{type(error).__name__}: {error}")
            continue
        if hessian:
            values, errors, scheme = d.value, d.error, d.scheme
        else:
            values = np.concatenate([np.ravel(v) for v in d.value])
            errors = np.concatenate([np.ravel(v) for v in d.error])
            scheme = np.concatenate([np.ravel(np.asarray(s, dtype=object)) for s in d.scheme])
        values, errors = np.ravel(np.asarray(values, dtype=float)), np.ravel(errors)
        resolved = bool(np.any(np.isfinite(values)))
        kink = np.ravel(np.asarray(scheme, dtype=object)) == "kink" if name == "central" else None
        out[name] = _Witness(values if resolved else None, errors, table[name],
                             d.reason or ("" if resolved else f"{d.method} resolves nothing"),
                             kink)
    return out


def _against_methods(f, args, comparison, claimed, spread, order, user):
    """Judge each entry by the methods that agree with each other (a strict majority of the
    methods that resolve it, or the only one): the claim is wrong where it contradicts any of
    them; where they split with no majority, wrong only if it contradicts them all."""
    witnesses = _witnesses(f, args, comparison, order)
    central = witnesses.get("central")
    kink = central.kink if central is not None else None
    verdicts, agreeing = [], {name: True for name in witnesses}
    for k, value in enumerate(claimed.tolist()):
        at_kink = kink is not None and bool(kink[k])
        votes = {}
        for name, witness in witnesses.items():
            if at_kink and name != "central":
                continue  # AD and the complex step give one convention at a kink, not all
            vote = witness.vote(k, at_kink)
            if vote is not None:
                votes[name] = vote
        if not votes:
            verdicts.append(("unchecked", math.nan, math.nan, math.nan, math.nan, ()))
            continue
        own = float(allowance(CLAIMED, [Accepted("exact", value, value, value)], spread[k],
                              user)[0]) if math.isfinite(value) else 0.0
        best = _majority(votes)
        if best:
            centre = float(np.median([votes[b][0] for b in best]))
            right = math.isfinite(value) and all(
                abs(value - votes[b][0]) <= votes[b][1] + own for b in best)
            verdict = ("convention" if at_kink else "ok") if right else "WRONG"
            for name in votes:
                agreeing[name] = agreeing[name] and name in best
        else:
            centre = float(np.median([v for v, _ in votes.values()]))
            contradicts_all = not math.isfinite(value) or all(
                abs(value - v) > a + own for v, a in votes.values())
            verdict = "WRONG" if contradicts_all else "unchecked"
        low = high = centre
        if at_kink and "central" in votes:
            v, a = votes["central"]
            low, high = v - a, v + a
        error = abs(value - centre) if math.isfinite(value) else math.inf
        verdicts.append((verdict, centre, low, high, error, tuple(best)))
    methods = {name: (w.values is not None, agreeing[name] and w.values is not None, w.note)
               for name, w in witnesses.items()}
    source = "consensus" if comparison is not None else "numerical"
    notes = ()
    if comparison is not None and comparison.reference != "symbolic":
        notes = (f"no symbolic reference ({comparison.methods['symbolic'].note}); each entry is "
                 f"judged by the methods that agree",)
    return _Row(verdicts, methods, source, math.nan, notes,
                kink is not None and bool(np.any(kink)))


def _majority(votes) -> tuple:
    """The names of the largest group of votes that agree pairwise, when it is unique and a
    strict majority (a single vote is its own majority); () otherwise."""
    names = list(votes)
    for size in range(len(names), 0, -1):
        groups = [g for g in _combinations(names, size)
                  if all(abs(votes[a][0] - votes[b][0]) <= votes[a][1] + votes[b][1]
                         for i, a in enumerate(g) for b in g[i + 1:])]
        if groups:
            if len(groups) == 1 and 2 * size > len(names):
                return tuple(groups[0])
            return ()
    return ()


def _combinations(names, size):
    return [list(c) for c in itertools.combinations(names, size)]


def _entries(kind, layout, claimed, rows):
    out = []
    inputs = layout.inputs
    for r, row in enumerate(rows):
        for k, (verdict, expected, low, high, error, support) in enumerate(row.verdicts):
            value = float(np.ravel(claimed)[r * len(row.verdicts) + k]) if kind == "jacobian" \
                else float(np.ravel(claimed)[k])
            if kind == "hessian":
                i, j = divmod(k, layout.size)
                (_, a, ai), (_, b, bi) = inputs[i], inputs[j]
                label = f"d2/d{_coordinate(a, ai)} d{_coordinate(b, bi)}"
                extra = {"argument2": b, "index2": bi}
            else:
                _, a, ai = inputs[k]
                extra = {}
                if kind == "jacobian":
                    label = f"d out{_index(layout.outputs[r])}/d{_coordinate(a, ai)}"
                    extra = {"output": layout.outputs[r]}
                else:
                    label = _coordinate(a, ai)
            relative = (error / abs(expected) if expected else (0.0 if error == 0 else math.inf)
                        ) if math.isfinite(error) and math.isfinite(expected) else math.nan
            out.append(Entry(label, a, ai, value, expected, low, high, error, relative,
                             verdict, support, **extra))
    return out


def _coordinate(name, index):
    return name + _index(index)


def _index(index):
    return f"[{','.join(map(str, index))}]" if index else ""


def _methods(rows):
    """The methods over every row: applicable where any row ran it, agreeing where every row
    that ran it agrees."""
    out = {}
    for row in rows:
        for name, (applicable, agrees, note) in row.methods.items():
            role = "reference" if name == "symbolic" else "method"
            seen = out.get(name)
            if seen is None:
                out[name] = Method(name, role, applicable, agrees if applicable else False, note)
            else:
                out[name] = Method(name, role, seen.applicable or applicable,
                                   (seen.agrees or not seen.applicable) and (agrees or not
                                                                             applicable),
                                   seen.note or note)
    return out


# ---- the Taylor remainder test ----


def _taylor(kind, f, args, layout, claimed, kink) -> Taylor:
    """Residuals of f's expansion with the claimed derivative along one seeded direction d,
    and their observed order in the step h. First derivatives are tested along +d and -d:
    a wrong derivative leaves the same first-order residual on both sides, a kink within the
    steps only on one, so the order counts only when both sides show it."""
    expected = 4 if kind == "hessian" else 2
    if kink:
        return Taylor((), (), None, expected, False,
                      "f has a kink at the point: its remainder is of low order whatever the "
                      "derivative")
    if not np.all(np.isfinite(claimed)):
        return Taylor((), (), None, expected, False, "the claimed derivative is not finite")
    z = np.concatenate([np.ravel(np.asarray(a, dtype=float)) for a in args])
    direction = np.random.default_rng(0).normal(size=z.size)
    direction *= np.maximum(1.0, np.abs(z)) / np.max(np.abs(direction))

    def at(point):
        pieces, start = [], 0
        for a, shape in zip(args, layout.shapes):
            size = math.prod(shape)
            piece = point[start:start + size].reshape(shape)
            pieces.append(float(piece) if np.ndim(a) == 0 else piece.copy())
            start += size
        try:
            out = np.asarray(f(*pieces), dtype=float)
        except Exception:
            return None
        return out if np.all(np.isfinite(out)) else None

    f0 = at(z)
    if kind == "hessian":
        slope = float(direction @ claimed @ direction)
    else:
        slope = np.reshape(claimed @ direction, np.shape(f0))
    sides = (1.0,) if kind == "hessian" else (1.0, -1.0)
    found = {side: ([], [], []) for side in sides}
    for k in range(TAYLOR_STEPS):
        h = 0.1 * 2.0**-k
        for side in sides:
            up = at(z + side * h * direction)
            if up is None:
                continue
            if kind == "hessian":
                down = at(z - h * direction)
                if down is None:
                    continue
                r = abs(float(up + down - 2 * f0) - h * h * slope)
                noise = 4 * EPS * (abs(float(up)) + abs(float(down)) + 2 * abs(float(f0)))
            else:
                r = float(np.max(np.abs(up - f0 - side * h * slope)))
                noise = 4 * EPS * float(np.max(np.abs(f0)) + np.max(np.abs(up))
                                        + h * np.max(np.abs(slope)))
            for store, item in zip(found[side], (h, r, noise)):
                store.append(item)
    orders = [_order(*found[side]) for side in sides]
    steps, residuals = found[1.0][0], found[1.0][1]
    if all(o is None for o in orders):
        shape = ("at most cubic" if kind == "hessian" else "linear")
        return Taylor(tuple(steps), tuple(residuals), None, expected, True,
                      f"the remainder stays at rounding level (f is {shape} along the "
                      f"direction, and the claim matches it)")
    if any(o is None for o in orders):
        # a wrong first derivative leaves the same first-order residual on both sides
        order = next(o for o in orders if o is not None)
        if order >= 1.5:
            return Taylor(tuple(steps), tuple(residuals), order, expected)
        return Taylor(tuple(steps), tuple(residuals), None, expected, True,
                      "inconclusive: the remainder is of order 1 along one side of the "
                      "direction only (f is not smooth within the steps)")
    if max(orders) - min(orders) > 0.5:
        return Taylor(tuple(steps), tuple(residuals), None, expected, True,
                      f"inconclusive: the remainder falls with order {orders[0]:.2f} along +d "
                      f"and {orders[1]:.2f} along -d (f is not smooth within the steps)")
    return Taylor(tuple(steps), tuple(residuals), float(np.mean(orders)), expected)


def _order(steps, residuals, noises):
    """The median rate log2(r(2h) / r(h)) over the three smallest steps whose residuals stand
    clear of rounding; None with fewer than two such rates."""
    rates = [math.log2(residuals[i] / residuals[i + 1]) for i in range(len(steps) - 1)
             if steps[i] == 2 * steps[i + 1] and residuals[i + 1] > TAYLOR_CLEAN * noises[i + 1]
             and residuals[i] > TAYLOR_CLEAN * noises[i]]
    return float(np.median(rates[-3:])) if len(rates) >= 2 else None
