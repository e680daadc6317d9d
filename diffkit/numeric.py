"""Numerical derivatives of any Python callable, each element with an error estimate and the
scheme behind it: central differences (Richardson), forward differences, the complex step, Hessians.

Steps. With eps the float64 machine epsilon and s = max(1, |x_i|) for the element x_i: forward
difference h = sqrt(eps) * s, central difference h = eps**(1/3) * s, second differences
h = eps**(1/4) * s; every step is replaced by (x_i + h) - x_i so that x_i + h is exact. Plain
rules are applied again at twice their step; the error estimate is the difference of the two
results (doubled for forward differences) plus the rounding bound 4 eps (max|f| + |x_i f'|) / h
(over h_i h_j for second differences; |x_i f'| because f sees x_i rounded). Richardson (Ridders'
table) uses the 15 steps 2**k times the central step, k = 14 (about 0.1 * s) down to 0,
extrapolates by powers of 4 and keeps the entry that differs least from its neighbours in the
table, rounding bound included; twice that is its error estimate.

When a step fails. Every estimate rests on the model D(h) = D + c h**2 + ... (c h + ... for
one-sided differences). A step fails when f is not finite at x +- h (or raises ArithmeticError
or ValueError there), or when the differences do not follow the model: toward smaller steps they
grow, or shrink slower than h**2, beyond 64 times the rounding bound (a pole, kink or jump inside
the stencil, or f varying below the float spacing); for the two-step rules also when their two
results differ by more than 1e-3 of their size. Only then are more steps tried, 15 a ladder:
steps relative to |x_i| when 0 < |x_i| < 1, then two ladders below the standard ones; for first
derivatives then one-sided Richardson (forward and backward, extrapolated in powers of h), used
where the other side leaves the domain or both sides agree. At a kink (the one-sided derivatives
differ) central differences report their mean with half their difference in the error. Where
nothing applies the element is nan, its scheme "none", `applicable` False and `reason` says
where (if f itself is not finite at the point every element is nan and `applicable` stays True).

The complex step (h = 1e-20) has a step error of order h**2 f''' / f'. Re f(x + ih) =
f(x) - h**2 f'' / 2 + ... measures it: where Re f(x + ih) differs from f(x) by more than 1e-13
of |f|, beyond rounding and an ordinary curvature (a pole or branch point within about
3e6 h of x: 1 / x at 1e-100), the complex step does not apply; otherwise its estimate is
4 eps |value| plus the step error so measured. The complex-step
Hessian takes central differences of complex steps by the two-step rule above; a moved point
where f is not finite, or where Re f(z + ih) is not f(z), is off f's real domain (the complex
step would follow a branch there) and fails like a non-finite step.
Estimates assume f is computed to a few ulps of max|f| over the steps (and of |x f'|), or of
max(1, |f|) where f does not change at all across a step (log(1 + x) at x = 1e-17 is 0 in
floats: it may vary below the spacing of an intermediate).
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from diffkit.arguments import normalize_argnums
from diffkit.errors import (
    DiffkitError,
    InputError,
    NotAnalyticError,
    SwitchPointError,
    first_line,
)

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)  # no error estimate is below the smallest normal float
LEVELS = 15
SLACK = 64  # rounding beyond the bound the estimates assume that a step may show before it fails
SETTLED = 1e-3  # two-step rules retry with a ladder when their two results differ more than this
SCHEMES = ("central", "central, Richardson", "central, smaller step", "forward", "backward",
           "kink", "complex step", "none")


@dataclass(frozen=True, eq=False)
class NumericDerivative:
    """Tuples with one entry per argnum, each shaped like its argument (a float for a scalar).

    `scheme` names, per element, how its value was obtained (one of SCHEMES): "central" at the
    documented steps, "central, Richardson" (plain central differences that had to extrapolate),
    "central, smaller step" (the standard steps left the domain or crossed a singularity),
    "forward"/"backward" (one-sided Richardson), "kink" (mean of the one-sided derivatives),
    "complex step", or "none" (nan; then `applicable` is False and `reason` says where).
    """

    value: tuple
    error: tuple
    step: tuple
    method: str
    applicable: bool = True
    reason: str = ""
    scheme: tuple = ()


@dataclass(frozen=True, eq=False)
class NumericHessian:
    """An (n, n) Hessian over the selected arguments flattened in order; `shapes` gives them.
    `scheme` is an (n, n) array of SCHEMES names; "none" entries are nan (`applicable` False)."""

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    shapes: tuple
    method: str = "central second differences"
    applicable: bool = True
    reason: str = ""
    scheme: np.ndarray | None = None

    def block(self, i: int, j: int) -> np.ndarray:
        """d2f / d(argument i) d(argument j), shaped shapes[i] + shapes[j] (i, j count argnums)."""
        offsets = np.cumsum([0] + [math.prod(shape) for shape in self.shapes])
        rows = slice(offsets[i], offsets[i + 1])
        cols = slice(offsets[j], offsets[j + 1])
        return self.value[rows, cols].reshape(self.shapes[i] + self.shapes[j])


class _Unavailable(Exception):
    """No derivative can be reported (f not finite at the point, or not analytic); says why."""

    def __init__(self, reason: str, applicable: bool = True):
        super().__init__(reason)
        self.applicable = applicable


class _AtSwitch(_Unavailable):
    """A complex step taken exactly at a piecewise op's switch: that element has no complex-step
    derivative (the others may)."""


@dataclass(frozen=True)
class _Point:
    """f with its selected arguments taken from one flat vector z (fresh copies on every call).

    `known` holds values of f prefetched in batches (see `prefetch`), keyed as `real` and
    `_imaginary` are called; a key not there is evaluated on its own."""

    f: Callable
    args: tuple
    argnums: tuple
    shapes: tuple
    python_scalar: tuple
    z: np.ndarray
    known: dict = field(default_factory=dict, compare=False)

    def broadcasts(self) -> bool:
        """True when every argument of f is a float and f maps arrays of points to arrays of
        values (each its value at that point, to a few ulps), as grammar expressions do."""
        if "broadcasts" not in self.known:
            self.known["broadcasts"] = broadcasts(self.f, self.args)
        return self.known["broadcasts"]

    def _batch(self, zs: np.ndarray):
        """f at each row of zs in one call, or None when f does not return one value a row."""
        full = list(self.args)
        for column, k in enumerate(self.argnums):
            full[k] = zs[:, column]
        out = self.f(*full)
        if type(out) is not np.ndarray or out.shape != (len(zs),) or out.dtype.kind not in "fc":
            return None
        return out

    def prefetch(self, keys: list, imaginary: bool = False, chunk: int = 20_000) -> None:
        """Evaluate f at many moved points in a few calls when f broadcasts. A key is a tuple
        of (m, h) moves (`real`), or (m, h, moves) for f(z + moves + i h e_m) (`_imaginary`)."""
        keys = [k for k in keys if (imaginary, k) not in self.known]
        if not keys or not self.broadcasts():
            return
        for start in range(0, len(keys), chunk):
            part = keys[start:start + chunk]
            zs = np.repeat(self.z[None, :].astype(complex if imaginary else float), len(part),
                           axis=0)
            for row, key in enumerate(part):
                moves = key[2] if imaginary else key
                for m, h in moves:
                    zs[row, m] += h
                if imaginary:
                    zs[row, key[0]] = complex(zs[row, key[0]].real, key[1])
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    out = self._batch(zs)
            except Exception:
                return
            if out is None or (imaginary and out.dtype.kind != "c"):
                return
            for key, value in zip(part, out.tolist(), strict=True):
                self.known[imaginary, key] = value

    def __call__(self, z: np.ndarray):
        full = list(self.args)
        start = 0
        for k, shape, scalar in zip(self.argnums, self.shapes, self.python_scalar, strict=True):
            piece = z[start:start + math.prod(shape)].reshape(shape).copy()
            full[k] = piece.item() if scalar else piece
            start += piece.size
        return self.f(*full)

    def real(self, *moves: tuple) -> float:
        """f with element m moved by h for each (m, h); nan where f leaves its domain."""
        known = self.known.get((False, moves))
        if known is not None:
            return known if math.isfinite(known) else math.nan
        moved = self.z.copy()
        for m, h in moves:
            moved[m] += h
        try:
            out = self(moved)
        except DiffkitError:
            raise
        except (ArithmeticError, ValueError):
            return math.nan
        return _scalar(out)

    def split(self, flat: np.ndarray) -> tuple:
        offsets = np.cumsum([0] + [math.prod(shape) for shape in self.shapes])
        pieces = [flat[offsets[n]:offsets[n + 1]].reshape(shape)
                  for n, shape in enumerate(self.shapes)]
        return tuple(piece.item() if piece.shape == () else piece for piece in pieces)

    def where(self, m: int) -> str:
        for k, shape in zip(self.argnums, self.shapes, strict=True):
            if m < math.prod(shape):
                index = tuple(int(i) for i in np.unravel_index(m, shape))
                return f"argument {k}" + (f" at index {index}" if shape else "")
            m -= math.prod(shape)
        return "nowhere"


def broadcasts(f, args) -> bool:
    """True when every argument is a number and f maps arrays of points to arrays of values
    (each its value at that point, to a few ulps), as grammar expressions and most scalar
    functions of diffkit ops do: then one call with arrays evaluates many points. The check
    uses distinct points, so that a reduction over the batch (dk.max, dk.mean) is caught.

    Example:
        >>> broadcasts(lambda x, y: x * y + 1.0, (2.0, 3.0))
        True
    """
    if not all(type(a) in (float, int) for a in args):
        return False
    points = [args, tuple(a * (1 + 1e-3) + 1e-3 for a in args)]
    try:
        singles = np.array([float(f(*p)) for p in points])
        batch = f(*(np.array(column, dtype=float) for column in zip(*points)))
    except Exception:
        return False
    if type(batch) is not np.ndarray or batch.shape != (2,) or batch.dtype.kind != "f":
        return False
    if not np.all(np.isfinite(singles)):
        return False
    return bool(np.all(np.abs(batch - singles) <= 8 * EPS * np.abs(singles)))


def _scalar(out) -> float:
    value = np.asarray(out)
    if value.shape != () or value.dtype.kind not in "iuf":
        raise InputError(f"f must return a real scalar for real arguments; it returned "
                         f"{type(out).__name__} {value.dtype} of shape {value.shape}")
    return float(value)


def _argument(k: int, arg) -> np.ndarray:
    if isinstance(arg, (bool, np.bool_)):
        raise InputError(f"argument {k} is a bool; pass a float")
    if isinstance(arg, (int, float, np.floating)):
        array = np.asarray(float(arg))
    elif isinstance(arg, np.ndarray) and arg.dtype.kind == "f":
        array = arg.astype(np.float64)
    elif isinstance(arg, np.ndarray):
        raise InputError(f"argument {k} has dtype {arg.dtype}; pass a float array (astype(float))")
    else:
        raise InputError(f"argument {k} is a {type(arg).__name__}; pass a float or a float array")
    if not np.all(np.isfinite(array)):
        raise InputError(f"argument {k} is not finite; differentiate at a finite point")
    return array


def _point(f, args, argnums) -> _Point:
    if not callable(f):
        raise InputError(f"f must be callable; got {type(f).__name__}")
    if not isinstance(args, (tuple, list)):
        raise InputError("args must be a tuple of positional arguments, e.g. (x,) or (x, y)")
    nums = normalize_argnums(argnums, len(args), distinct=True)
    arrays = [_argument(k, args[k]) for k in nums]
    return _Point(f, tuple(args), nums, tuple(a.shape for a in arrays),
                  tuple(not isinstance(args[k], np.ndarray) for k in nums),
                  np.concatenate([a.ravel() for a in arrays]))


def _exact_step(x: float, h: float) -> float:
    return (x + h) - x


@dataclass(frozen=True)
class _Estimate:
    """One element's derivative: value, error bound, step, scheme, and a note (why "none", or
    the one-sided derivatives at a kink)."""

    value: float
    error: float
    step: float
    scheme: str
    note: str = ""


@dataclass(frozen=True)
class _Row:
    """One difference quotient: its value, the step behind it, the bound on the rounding of
    its inputs (_noise), the factor that turns an error in them into an error in the value, and
    (central rules) a part in the units of f that must shrink like h**2: (f(x + h) + f(x - h))
    / 2 - f(x) for first derivatives, the numerator for second ones (it cannot underflow where
    the quotient does)."""

    value: float
    step: float
    noise: float
    unit: float
    even: float | None = None

    @property
    def rounding(self) -> float:
        return self.noise * self.unit


def _noise(values, reach: float = 0.0, slope: float = 0.0) -> float:
    """4 eps (max|values| + reach |slope|), kept from overflowing: f's values carry rounding of
    a few ulps, plus |x| |f'| eps since f sees x rounded (sin(w x) at large w x)."""
    return 4 * EPS * max((TINY, *map(abs, values))) + (4 * EPS * reach) * abs(slope)


def _flat(values: tuple) -> tuple:
    """values, and 1.0 with them where they are all equal: an f that does not change across a
    step may change below the float spacing of some intermediate (log(1 + x) at x = 1e-17 is 0
    in floats, and so is its difference), so its rounding is a few ulps of max(1, |f|) there."""
    return (*values, 1.0) if min(values) == max(values) else values


def _rises(values: list, allowance: list, order: int) -> bool:
    """True when some |values[k]| (steps halving along the list) exceeds allowance[k] plus the
    envelope of the earlier ones shrunk by 1.25 / 2**order per halving: a c h**order term
    shrinks by 2**order per halving, noise and non-smooth terms do not."""
    ratio = 1.25 / 2.0**order
    envelope = None
    for value, allowed in zip(values, allowance, strict=True):
        if envelope is not None and abs(value) > envelope + allowed:
            return True
        envelope = ratio * (abs(value) if envelope is None else max(envelope, abs(value)))
    return False


def _richardson(rows: list, order: int):
    """Ridders' best entry (value, error, step) over rows at halving steps (largest first), or
    None when the rows do not follow the model D + c h**order + ... the extrapolation rests on."""
    n = len(rows)
    table = [[rows[0].value]]
    gain = [1.0]  # bound on how much column j of the table amplifies rounding in the rows
    best = (math.inf, 0, 0)
    for i in range(1, n):
        current = [rows[i].value]
        for j in range(1, i + 1):
            current.append(current[j - 1]
                           + (current[j - 1] - table[i - 1][j - 1]) / (2.0 ** (order * j) - 1))
        table.append(current)
        gain.append(gain[-1] * (2.0 ** (order * i) + 1) / (2.0 ** (order * i) - 1))
        for j, entry in enumerate(current):
            spread = abs(entry - table[i - 1][0])
            if j > 0:
                spread = max(abs(entry - current[j - 1]), abs(entry - table[i - 1][j - 1]))
            total = spread + gain[j] * rows[i].rounding
            if total <= best[0]:
                best = (total, i, j)
    total, i, j = best
    if not math.isfinite(total):
        return None
    value = table[i][j]
    error = 2 * total + EPS * abs(value)
    # The checks allow SLACK times the rounding bound at f's largest size over the whole ladder,
    # so that an f computed with some cancellation is not taken for a non-smooth one.
    noise = max(row.noise for row in rows)
    allowed = [SLACK * noise * row.unit for row in rows]
    for k in range(i + 1, n):  # smaller steps: at most the truncation of the chosen entry
        gap = abs(table[k][j] - value)
        if gap > error + gain[j] * allowed[k]:
            return None
        if gap > error + gain[j] * rows[k].rounding:
            error = gap  # more rounding than assumed: the estimate owns up to it
    # rows much coarser than the chosen one may be pre-asymptotic (h**4 terms, h near the radius
    # of convergence) and are not held to h**2; at least five rows are, so noise cannot pass
    start = max(0, min(i - 2, n - 5))
    differences = [rows[k].value - rows[k - 1].value for k in range(start + 1, n)]
    if _rises(differences, [allowed[k] + allowed[k - 1] for k in range(start + 1, n)], order):
        return None
    if rows[0].even is not None:
        evens = [row.even for row in rows[start:]]
        if _rises(evens, [SLACK * noise] * len(evens), 2):
            return None
    return value, error, rows[i].step


def _ladder(row: Callable, top: float, order: int, smallest: float):
    """Rows at steps top / 2**k (LEVELS of them, none below `smallest`) and their validated
    Richardson entry: ("ok", (value, error, step)), or ("edge", None) when f is not finite at
    the smallest step, ("rough", None) when the rows do not follow the model, ("short", None)
    when fewer than three steps are above `smallest`."""
    steps = [t for t in (top / 2**k for k in range(LEVELS)) if t >= smallest]
    if len(steps) < 3:
        return "short", None
    rows = []
    for t in steps:
        found = row(t)
        if found is None:
            rows = []  # one contiguous run of finite rows down to the smallest step
        else:
            rows.append(found)
    if found is None or len(rows) < 3:
        return "edge", None
    found = _richardson(rows, order)
    return ("ok", found) if found is not None else ("rough", None)


def _settled(fine: _Row, coarse: _Row) -> bool:
    """True when a rule at h and 2h looks converged: the two results differ by less than
    SETTLED of their size or by rounding, and an even part shrinks like h**2."""
    gap = abs(fine.value - coarse.value)
    noise = SLACK * max(fine.noise, coarse.noise)
    if gap > SETTLED * max(abs(fine.value), abs(coarse.value)) + noise * (fine.unit + coarse.unit):
        return False
    return fine.even is None or abs(fine.even) <= abs(coarse.even) / 3.2 + noise


def _attempts(xs: tuple, top: float) -> list:
    """(scheme, scales, top) of the ladders tried in turn for an entry over coordinates xs:
    the standard one, one relative to |x| when some 0 < |x| < 1, two continuing below."""
    standard = tuple(max(1.0, abs(x)) for x in xs)
    relative = tuple(abs(x) if 0 < abs(x) < 1 else max(1.0, abs(x)) for x in xs)
    attempts = [("central", standard, top)]
    if relative != standard:
        attempts.append(("central, smaller step", relative, top))
    attempts += [("central, smaller step", standard, top / 2.0**LEVELS),
                 ("central, smaller step", standard, top / 2.0 ** (2 * LEVELS))]
    return attempts


def _smallest(xs: tuple, scales: tuple) -> float:
    """The smallest step factor t for which every t * scale is at least 1024 ulps of its x."""
    return max(1024 * math.ulp(x) / scale for x, scale in zip(xs, scales, strict=True))


def _each_element(point: _Point, rule, method: str) -> NumericDerivative:
    """Apply rule(m, x_m, f(x)) -> _Estimate to every flat element m of the point."""
    n = point.z.size
    value, error, step = (np.full(n, math.nan) for _ in range(3))
    scheme = np.full(n, "none", dtype=object)
    notes = {}
    with np.errstate(all="ignore"):
        try:
            f0 = _scalar(point(point.z.copy()))
            if not math.isfinite(f0):
                raise _Unavailable(f"f is not finite at the point (f = {f0}); "
                                   f"every derivative is nan")
            for m in range(n):
                found = rule(m, float(point.z[m]), f0)
                if found.scheme != "none" and not (math.isfinite(found.value)
                                                   and math.isfinite(found.error)):
                    found = _Estimate(math.nan, math.nan, math.nan, "none",
                                      f"f is not finite near the point at {point.where(m)}; "
                                      f"its derivative is nan")
                value[m], error[m], step[m], scheme[m] = (found.value, found.error, found.step,
                                                          found.scheme)
                if found.note:
                    notes[m] = found.note
        except _Unavailable as nan:
            value[:] = error[:] = step[:] = math.nan
            scheme[:] = "none"
            return NumericDerivative(point.split(value), point.split(error), point.split(step),
                                     method, nan.applicable, str(nan), point.split(scheme))
    error = np.maximum(error, TINY)
    return NumericDerivative(point.split(value), point.split(error), point.split(step), method,
                             "none" not in scheme, _reason(scheme, notes, "elements"),
                             point.split(scheme))


def _reason(scheme: np.ndarray, notes: dict, what: str) -> str:
    """One line: the first element without a derivative, and the first kink, with counts."""
    parts = []
    for name in ("none", "kink"):
        where = [m for m in notes if scheme.flat[m] == name]
        if where:
            count = f" ({len(where)} {what} like this)" if len(where) > 1 else ""
            parts.append(notes[where[0]] + count)
    return "; ".join(parts)


def forward_difference(f: Callable, args, argnums=0) -> NumericDerivative:
    """Forward differences (f(x + h) - f(x)) / h, h = sqrt(eps) * max(1, |x|), per element.

    Returns a NumericDerivative: value, error and step tuples, one entry per argnum.

    Example:
        >>> round(forward_difference(lambda x: x * x, (3.0,)).value[0], 6)
        6.0
    """

    def rule(m, x, f0):
        h = _exact_step(x, math.sqrt(EPS) * max(1.0, abs(x)))
        h2 = _exact_step(x, 2 * math.sqrt(EPS) * max(1.0, abs(x)))
        f1, f2 = point.real((m, h)), point.real((m, h2))
        d1, d2 = (f1 - f0) / h, (f2 - f0) / h2
        error = 2 * abs(d1 - d2) + 4 * EPS * max(abs(f0), abs(f1), abs(f2)) / h
        return _Estimate(d1, error, h, "forward")

    point = _point(f, args, argnums)
    return _each_element(point, rule, "forward")


def _central(point: _Point, m: int, x: float, f0: float, richardson: bool) -> _Estimate:
    """Central differences for element m at its standard steps, else at smaller steps, else
    one-sided; "none" with the reason when no scheme settles."""

    def central(scale):
        def row(t):
            h = _exact_step(x, t * scale)
            if h == 0:
                return None
            up, down = point.real((m, h)), point.real((m, -h))
            mean = up / 2 + down / 2
            if not (math.isfinite(up - down) and math.isfinite(mean)):
                return None
            slope = (up - down) / (2 * h)
            return _Row(slope, h, _noise(_flat((f0, up, down)), abs(x), slope), 1 / h, mean - f0)

        return row

    base, standard = EPS ** (1 / 3), max(1.0, abs(x))
    if not richardson:
        fine, coarse = central(standard)(base), central(standard)(2 * base)
        if fine is not None and coarse is not None and _settled(fine, coarse):
            error = abs(fine.value - coarse.value) + fine.rounding
            return _Estimate(fine.value, error, fine.step, "central")
    attempts = _attempts((x,), base * 2 ** (LEVELS - 1))
    edge = False
    for number, (scheme, (scale,), top) in enumerate(attempts):
        status, found = _ladder(central(scale), top, 2, _smallest((x,), (scale,)))
        if status == "ok":
            if number == 0 and not richardson:
                scheme = "central, Richardson"
            return _Estimate(*found, scheme)
        edge = edge or status == "edge"
    return _one_sided(point, m, x, f0, attempts, edge)


def _one_sided(point: _Point, m: int, x: float, f0: float, attempts: list, edge: bool):
    """Forward and backward Richardson for element m (powers of h): one side where the other
    leaves the domain, either where they agree, their mean at a kink; else "none"."""

    def side(sign, scale):
        def row(t):
            h = _exact_step(x, sign * t * scale)
            if h == 0:
                return None
            moved = point.real((m, h))
            if not math.isfinite(moved):
                return None
            slope = (moved - f0) / h
            return _Row(slope, abs(h), _noise(_flat((f0, moved)), abs(x), slope), 1 / abs(h))

        return row

    found, outside = {}, {}
    for sign in (1, -1):
        outside[sign] = True
        for _, (scale,), top in attempts:
            status, result = _ladder(side(sign, scale), top, 1, _smallest((x,), (scale,)))
            if status == "ok":
                found[sign] = result
                break
            outside[sign] = outside[sign] and status != "rough"
    where = f"{point.where(m)} = {x:.6g}"
    if 1 in found and -1 in found:
        (right, right_error, right_step), (left, left_error, left_step) = found[1], found[-1]
        if abs(right - left) <= right_error + left_error:
            name = "forward" if right_error <= left_error else "backward"
            return _Estimate(*found[1 if name == "forward" else -1], name)
        return _Estimate((right + left) / 2, abs(right - left) / 2 + max(right_error, left_error),
                         min(right_step, left_step), "kink",
                         f"f has a kink at {where}: its one-sided derivatives are "
                         f"{left + 0.0:.6g} and {right + 0.0:.6g}, the value is their mean")
    for sign, name in ((1, "forward"), (-1, "backward")):
        if sign in found and outside[-sign]:
            return _Estimate(*found[sign], name)
    if edge:
        note = f"the step crosses a singularity or domain edge near {where}"
    else:
        note = f"f is not smooth near {where} at any step tried (its differences do not settle)"
    return _Estimate(math.nan, math.nan, math.nan, "none",
                     note + ": central differences do not apply here")


def central_difference(f: Callable, args, argnums=0, richardson=True) -> NumericDerivative:
    """Central differences (f(x + h) - f(x - h)) / 2h, Richardson extrapolated by default.

    Returns a NumericDerivative: value, error and step tuples, one entry per argnum, each shaped
    like its argument; `step` is the smallest step behind each value, `scheme` how each value was
    obtained (smaller steps or one-sided differences near a domain edge or singularity; "none",
    with `applicable` False, where no scheme applies).

    Example:
        >>> abs(central_difference(math.exp, (1.0,)).value[0] - math.e) < 1e-13
        True
    """
    point = _point(f, args, argnums)
    point.prefetch(_central_keys(point, richardson))
    return _each_element(point, lambda m, x, f0: _central(point, m, x, f0, richardson),
                         "central, Richardson" if richardson else "central")


def _central_keys(point: _Point, richardson: bool) -> list:
    """The moves of the standard steps `_central` takes first, for every element."""
    keys = []
    base = EPS ** (1 / 3)
    for m, x in enumerate(point.z.tolist()):
        scale = max(1.0, abs(x))
        if richardson:
            top = base * 2 ** (LEVELS - 1)
            smallest = _smallest((x,), (scale,))
            factors = [t for t in (top / 2**k for k in range(LEVELS)) if t >= smallest]
        else:
            factors = [base, 2 * base]
        for t in factors:
            h = _exact_step(x, t * scale)
            if h != 0:
                keys += [((m, h),), ((m, -h),)]
    return keys


def _imaginary(point: _Point, m: int, x: float, h: float, moves: tuple = ()) -> complex:
    """f(z + i h e_m), with element k first moved by d for each (k, d) in moves (nan where f
    leaves its domain); raises _Unavailable when f shows it is not analytic."""
    known = point.known.get((True, (m, h, moves)))
    if known is not None and not moves and x != point.z[m]:
        known = None  # keyed by the point's own x_m
    if known is not None:
        return complex(known)
    z = point.z.astype(complex)
    for k, d in moves:
        z[k] += d
    z[m] = complex(z[m].real if moves else x, h)
    tail = ": the complex step does not apply"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            out = point(z)
    except SwitchPointError as exc:
        raise _AtSwitch(f"{first_line(exc)} ({point.where(m)})", False) from None
    except NotAnalyticError as exc:
        message = first_line(exc, "f is not analytic").rstrip(".")
        raise _Unavailable(message + ("" if "complex step" in message else tail), False) from None
    except DiffkitError:
        raise
    except TypeError as exc:
        raise _Unavailable(f"f refuses complex input ({exc})" + tail, False) from None
    except np.exceptions.ComplexWarning:
        raise _Unavailable("f discards the imaginary part of its input" + tail, False) from None
    except (ArithmeticError, ValueError):
        return complex(math.nan, math.nan)
    value = np.asarray(out)
    if value.shape != () or value.dtype.kind not in "iufc":
        raise InputError(f"f must return a scalar; it returned {type(out).__name__} "
                         f"{value.dtype} of shape {value.shape}")
    if value.dtype.kind != "c":
        raise _Unavailable(f"f returned a real {type(out).__name__} for complex input (an "
                           f"operation such as abs, or f ignores {point.where(m)})" + tail, False)
    return complex(value)


def _step_check(out: complex, f0: float, x: float, h: float, where: str) -> tuple:
    """(Why the complex step h is not small against the scale of f near x, or ""; the relative
    and the absolute step error of Im f(x + ih) / h.) Re f(x + ih) = f(x) - h**2 f''(x) / 2 + ...
    and the step error of Im f(x + ih) / h is -h**2 f'''(x) / 6 + ...: of the same relative
    order near a pole or a branch point. So Re f(x + ih) must be f(x) to 1e-13, beyond rounding
    and beyond a curvature |f''| up to 2e8 max(1, |f|) / max(1, |x|)**2 (f(x) may be 0, as x**2
    at 0), which is taken to bring |f'''| ~ |f''| / max(1, |x|)."""
    deviation = abs(out.real - f0)
    size = max(abs(f0), abs(out.real))
    rounding = SLACK * 4 * EPS * (size + abs(x * out.imag / h))
    curvature = 1e8 * h * (h / max(1.0, abs(x))) * (max(1.0, abs(f0)) / max(1.0, abs(x)))
    if deviation > 1e-13 * size + rounding + curvature:
        return (f"the complex step h = {h:g} is not small against the scale of f near {where} "
                f"(Re f(x + ih) = {out.real:.6g}, f(x) = {f0:.6g}): the complex step does not "
                f"apply", math.nan, math.nan)
    relative = max(0.0, deviation - curvature) / size if size > 0 else 0.0
    return "", 10 * relative, min(deviation, curvature) / max(1.0, abs(x))


def complex_step(f: Callable, args, argnums=0, h=1e-20) -> NumericDerivative:
    """Complex-step derivatives Im f(x + i h e_k) / h, exact to rounding for analytic f.

    Returns a NumericDerivative; when f is not analytic (it raises NotAnalyticError or
    TypeError on complex input, discards an imaginary part, or returns a real number)
    `applicable` is False, every value is nan and `reason` says why. An element where
    Re f(x + ih) shows h is not small against the scale of f (1 / x at x = 1e-100), or whose
    step lands exactly on a piecewise op's switch (relu at 0), is nan with scheme "none". A
    real intermediate mixed back into a complex result (np.abs inside a sum) cannot be seen:
    compare with central.

    Example:
        >>> complex_step(lambda x: x**3, (2.0,)).value[0]
        12.0
    """
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 < h < 1e-3:
        raise InputError(f"the complex step h must be a float in (0, 1e-3); got {h!r}")

    def rule(m, x, f0):
        try:
            out = _imaginary(point, m, x, float(h))
        except _AtSwitch as at:
            return _Estimate(math.nan, math.nan, float(h), "none", str(at))
        value = out.imag / h
        note, relative, absolute = _step_check(out, f0, x, float(h),
                                               f"{point.where(m)} = {x:.6g}")
        if note and math.isfinite(value):
            return _Estimate(math.nan, math.nan, float(h), "none", note)
        error = (4 * EPS + relative) * abs(value) + absolute
        return _Estimate(value, error, float(h), "complex step")

    point = _point(f, args, argnums)
    point.prefetch([(m, float(h), ()) for m in range(point.z.size)], imaginary=True)
    return _each_element(point, rule, "complex step")


def _entry(row_at: Callable, xs: tuple, base: float, where: str, units=None) -> _Estimate:
    """One Hessian entry from a central rule over coordinates xs: row_at(t, scales) is the rule
    at steps t * scales, or None where f is not finite there, in units of prod(units(scales))
    times the entry's. The steps base and 2 base when they settle, else Richardson ladders,
    else "none"."""
    standard = tuple(max(1.0, abs(x)) for x in xs)
    fine, coarse = row_at(base, standard), row_at(2 * base, standard)
    if fine is not None and coarse is not None and _settled(fine, coarse):
        error = abs(fine.value - coarse.value) + fine.rounding
        return _Estimate(*_apart(fine.value, error, units, standard), fine.step, "central")
    edge = False
    for number, (scheme, scales, top) in enumerate(_attempts(xs, base * 2**6)):
        status, found = _ladder(lambda t, scales=scales: row_at(t, scales), top, 2,
                                _smallest(xs, scales))
        if status == "ok":
            return _Estimate(*_apart(found[0], found[1], units, scales), found[2],
                             "central, Richardson" if number == 0 else scheme)
        edge = edge or status == "edge"
    note = (f"the steps cross a singularity or domain edge near {where}" if edge else
            f"f is not smooth near {where} at any step tried (its differences do not settle)")
    return _Estimate(math.nan, math.nan, math.nan, "none",
                     note + ": second differences do not apply here")


def _apart(value: float, error: float, units, scales: tuple) -> tuple:
    """value and error out of the units(scales) of a ladder (one at a time: the product of the
    units may underflow); an entry beyond the float range is infinite, its error too."""
    for unit in units(scales) if units else ():
        value, error = value / unit, error / unit
    return value, (error if math.isfinite(value) else math.inf)


def _units(scales: tuple) -> tuple:
    """Units of the coordinates for rows of second differences, so that they neither underflow
    nor overflow: 1, or the steps' scale where it is below 1 (h_i h_j underflows near 1e-160)
    or where the scales multiply past 1e100 (1 / h**2 underflows near 1e160)."""
    if math.prod(scales) > 1e100:
        return scales
    return tuple(min(1.0, scale) for scale in scales)


def _pair(point: _Point, i: int, j: int) -> str:
    if i == j:
        return f"{point.where(i)} = {float(point.z[i]):.6g}"
    return (f"({point.where(i)}, {point.where(j)}) = "
            f"({float(point.z[i]):.6g}, {float(point.z[j]):.6g})")


def _second_difference_keys(point: _Point, base: float) -> list:
    """The moves of the steps base and 2 base that `hessian` takes first, for every entry."""
    xs = point.z.tolist()
    keys = []
    for t in (base, 2 * base):
        steps = [_exact_step(x, t * max(1.0, abs(x))) for x in xs]
        for i, hi in enumerate(steps):
            keys += [((i, hi),), ((i, -hi),)]
            for j in range(i):
                hj = steps[j]
                keys += [((i, a * hi), (j, b * hj)) for a in (1, -1) for b in (1, -1)]
    return keys


def complex_step_hessian(f: Callable, args, argnums=0, h=1e-20) -> NumericHessian:
    """Central differences of complex-step first derivatives (the hybrid of Lai & Crassidis):
    H_jk = (D_j(x + d e_k) - D_j(x - d e_k)) / (2 d), D_j = Im f(x + i h e_j) / h, with the
    central step d = eps**(1/3) * max(1, |x_k|); symmetrised. Error: |H(d) - H(2d)| + rounding,
    plus D_j's step error, plus half the asymmetry; where d and 2d do not settle, Richardson
    ladders as in `hessian`. Entries from a D_j whose step h is not small against f (see
    complex_step) are taken from H_kj, else "none". A D_j at a moved point where f is not
    finite, or where Re f(z + ih) is not f(z) (off f's real domain: sqrt(-d + ih) is
    i sqrt(d)), fails that step, so that the ladders take smaller ones.

    Example:
        >>> H = complex_step_hessian(lambda x, y: x * x * y, (1.0, 2.0), argnums=(0, 1))
        >>> [round(float(v), 8) for v in H.value.ravel()]
        [4.0, 2.0, 2.0, 0.0]
    """
    point = _point(f, args, argnums)
    n = point.z.size
    base = EPS ** (1 / 3)
    steps = np.array([_exact_step(float(x), base * max(1.0, abs(float(x)))) for x in point.z])
    keys = [(j, h, ()) for j in range(n)]
    for k, x in enumerate(point.z.tolist()):
        for t in (base, 2 * base):
            d = _exact_step(x, t * max(1.0, abs(x)))
            keys += [(j, h, ((k, s * d),)) for j in range(n) for s in (1, -1)]
    point.prefetch(keys, imaginary=True)
    point.prefetch(list(dict.fromkeys(moves for _, _, moves in keys if moves)))  # f off the point
    value, error = np.full((n, n), math.nan), np.full((n, n), math.nan)
    scheme = np.full((n, n), "none", dtype=object)
    notes, relative = {}, np.zeros(n)

    reals, slope = {}, {}  # f off the point; D_j at the point

    def moved(j, k, d):
        """D_j at the point moved by d along k; nan where f is not finite there, or where
        Re f(z + ih) is not f(z) (see complex_step): off f's real domain the complex step
        follows a branch (sqrt(-d + ih) = i sqrt(d)) and its Im / h means nothing."""
        out = _imaginary(point, j, 0.0, h, ((k, d),))
        if (k, d) not in reals:
            reals[k, d] = point.real((k, d))
        real = reals[k, d]
        x = float(point.z[j]) + (d if j == k else 0.0)
        if not math.isfinite(real) or _step_check(out, real, x, h, "")[0]:
            return math.nan
        return out.imag / h

    def row_at(j, k):
        x = float(point.z[k])
        reach = max(abs(float(point.z[j])), abs(x))

        def row(t, scales):
            d = _exact_step(x, t * scales[0])
            if d == 0:
                return None
            plus, minus = moved(j, k, d), moved(j, k, -d)
            if not math.isfinite(plus - minus):
                return None
            second = (plus - minus) / (2 * d)
            # D resolves no better than the smallest subnormal over h
            noise = _noise((plus, minus, math.ulp(0.0) / (EPS * h)), reach, second)
            # D's even part must shrink like d**2: a kink of D inside the stencil (relu(x)**2
            # at 1e-300 gives D = 2d and 0, a second difference of 1 at every d) makes it O(d)
            return _Row(second, d, noise, 1 / d, (plus + minus) / 2 - slope[j])

        return row

    with np.errstate(all="ignore"):
        f0 = _scalar(point(point.z.copy()))
        if not math.isfinite(f0):
            return NumericHessian(value, error, steps, point.shapes, "complex step hessian",
                                  reason=f"f is not finite at the point (f = {f0}); every entry "
                                  f"is nan", scheme=scheme)
        try:
            for j in range(n):
                out = _imaginary(point, j, float(point.z[j]), h)
                slope[j] = out.imag / h
                coarse, relative[j] = "", 0.0
                if math.isfinite(out.real) and math.isfinite(out.imag):
                    coarse, relative[j], _ = _step_check(out, f0, float(point.z[j]), h,
                                                         _pair(point, j, j))
                for k in range(n):
                    # where D_j itself is wrong, H_kj (from D_k) may stand in for H_jk
                    found = (_Estimate(math.nan, math.nan, math.nan, "none", coarse) if coarse
                             else _entry(row_at(j, k), (float(point.z[k]),), base,
                                         _pair(point, j, k)))
                    value[j, k], error[j, k], scheme[j, k] = found.value, found.error, found.scheme
                    if found.note:
                        notes[j * n + k] = found.note
        except _Unavailable as nan:
            return NumericHessian(np.full((n, n), math.nan), np.full((n, n), math.nan), steps,
                                  point.shapes, "complex step hessian", nan.applicable, str(nan),
                                  np.full((n, n), "none", dtype=object))
    error = error + relative[:, None] * np.abs(value)  # H_jk rests on D_j's step error
    # H_jk and H_kj estimate the same number: their mean, or the one that exists
    mine, theirs = np.isfinite(value), np.isfinite(value.T)
    both = mine & theirs
    symmetric = np.where(both, (value + value.T) / 2, np.where(mine, value, value.T))
    spread = np.where(both, np.maximum(error, error.T) + np.abs(value - value.T) / 2,
                      np.where(mine, error, error.T))
    schemes = scheme.copy()
    for j, k in zip(*np.nonzero(both), strict=True):
        schemes[j, k] = max(scheme[j, k], scheme[k, j], key=SCHEMES.index)
    schemes[~mine & theirs] = scheme.T[~mine & theirs]
    notes = {m: note for m, note in notes.items() if schemes.flat[m] == "none"}
    return NumericHessian(symmetric, np.maximum(spread, TINY), steps, point.shapes,
                          "complex step hessian", "none" not in schemes,
                          _reason(schemes, notes, "entries"), schemes)


def hessian(f: Callable, args, argnums=0) -> NumericHessian:
    """Central second differences; mixed partials by the 4-point formula.

    Returns a NumericHessian: value and error (n, n) over the selected arguments flattened in
    order (`shapes` and `block(i, j)` recover the argument shapes), step (n,) (the standard
    steps), scheme (n, n): entries whose steps h and 2h do not settle are Richardson
    extrapolated, at smaller steps near a domain edge or singularity, or "none" (nan, with
    `applicable` False and `reason`).

    Example:
        >>> H = hessian(lambda x, y: x * x * y, (1.0, 2.0), argnums=(0, 1))
        >>> round(float(H.value[0, 1]), 6)
        2.0
    """

    def row_at(i, j):
        xi, xj = float(point.z[i]), float(point.z[j])

        def row(t, scales):
            hi, hj = _exact_step(xi, t * scales[0]), _exact_step(xj, t * scales[1])
            if hi == 0 or hj == 0:
                return None
            if i == j:
                stencil = [point.real((i, hi)), point.real((i, -hi))]
                numerator = stencil[0] - 2 * f0 + stencil[1]
                noise = _noise(_flat((f0, *stencil)), abs(xi),
                               (stencil[0] - stencil[1]) / (2 * hi))
            else:
                stencil = [point.real((i, a * hi), (j, b * hj)) for a in (1, -1) for b in (1, -1)]
                pp, pm, mp, mm = stencil
                numerator = (pp - pm - mp + mm) / 4
                noise = (_noise(_flat((f0, *stencil)), abs(xi), (pp + pm - mp - mm) / (4 * hi))
                         + _noise((), abs(xj), (pp - pm + mp - mm) / (4 * hj)))
            if not (math.isfinite(numerator) and all(map(math.isfinite, stencil))):
                return None
            ui, uj = _units(scales)
            area = (hi / ui) * (hj / uj)
            if area == 0:  # h_i h_j underflows: the entry is beyond the float range
                return None
            return _Row(numerator / area, hi, noise, 1 / area, numerator)

        return row

    point = _point(f, args, argnums)
    n = point.z.size
    base = EPS**0.25
    value, error = np.full((n, n), math.nan), np.full((n, n), math.nan)
    scheme = np.full((n, n), "none", dtype=object)
    steps = np.array([_exact_step(float(x), base * max(1.0, abs(float(x)))) for x in point.z])
    point.prefetch(_second_difference_keys(point, base))
    notes = {}
    with np.errstate(all="ignore"):
        f0 = _scalar(point(point.z.copy()))
        if not math.isfinite(f0):
            return NumericHessian(value, error, steps, point.shapes, reason=f"f is not finite "
                                  f"at the point (f = {f0}); every entry is nan", scheme=scheme)
        for i in range(n):
            for j in range(i + 1):
                xs = (float(point.z[i]), float(point.z[j]))
                found = _entry(row_at(i, j), xs, base, _pair(point, i, j), _units)
                value[i, j] = value[j, i] = found.value
                error[i, j] = error[j, i] = found.error
                scheme[i, j] = scheme[j, i] = found.scheme
                if found.note:
                    notes[i * n + j] = found.note
    return NumericHessian(value, np.maximum(error, TINY), steps, point.shapes,
                          applicable="none" not in scheme, reason=_reason(scheme, notes, "entries"),
                          scheme=scheme)
