"""Numerical derivatives of any Python callable, each element with an error estimate:
forward and central differences (Richardson extrapolated), the complex step, and a Hessian.

Step rule. With eps the float64 machine epsilon and s = max(1, |x_i|) for the element x_i:
forward difference h = sqrt(eps) * s, central difference h = eps**(1/3) * s, second differences
h = eps**(1/4) * s; every step is replaced by (x_i + h) - x_i so that x_i + h is exact. Each
rule is applied again at twice its step; the error estimate is the difference of the two
results (doubled for forward differences) plus the rounding bound 4 eps max|f| / h (over h_i h_j
for second differences). Richardson (Ridders' table) uses the 15 steps 2**k times the central
step, k = 14 (about 0.1 * s) down to 0, extrapolates by powers of 4 and keeps the entry that
differs least from its neighbours in the table, rounding bound included; twice that is its
error estimate. The complex step (h = 1e-20) has no step error; its estimate is 4 eps |value|.
Estimates assume f is computed to a few ulps of |f| (no cancellation of large terms inside f).
Where f is not finite at a perturbed point (or raises ArithmeticError or ValueError there) the
element is nan and `reason` says so; the Richardson table first drops its largest steps.
"""

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from diffkit.errors import DiffkitError, InputError, NotAnalyticError

EPS = float(np.finfo(np.float64).eps)
TINY = float(np.finfo(np.float64).tiny)  # no error estimate is below the smallest normal float
LEVELS = 15


@dataclass(frozen=True, eq=False)
class NumericDerivative:
    """Tuples with one entry per argnum, each shaped like its argument (a float for a scalar)."""

    value: tuple
    error: tuple
    step: tuple
    method: str
    applicable: bool = True
    reason: str = ""


@dataclass(frozen=True, eq=False)
class NumericHessian:
    """An (n, n) Hessian over the selected arguments flattened in order; `shapes` gives them."""

    value: np.ndarray
    error: np.ndarray
    step: np.ndarray
    shapes: tuple
    method: str = "central second differences"
    applicable: bool = True
    reason: str = ""

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


@dataclass(frozen=True)
class _Point:
    """f with its selected arguments taken from one flat vector z (fresh copies on every call)."""

    f: Callable
    args: tuple
    argnums: tuple
    shapes: tuple
    python_scalar: tuple
    z: np.ndarray

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
        return tuple(float(piece) if piece.shape == () else piece for piece in pieces)

    def where(self, m: int) -> str:
        for k, shape in zip(self.argnums, self.shapes, strict=True):
            if m < math.prod(shape):
                index = tuple(int(i) for i in np.unravel_index(m, shape))
                return f"argument {k}" + (f" at index {index}" if shape else "")
            m -= math.prod(shape)
        return "nowhere"


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
    nums = (argnums,) if isinstance(argnums, int) else argnums
    if (not isinstance(nums, tuple) or not nums
            or any(isinstance(k, bool) or not isinstance(k, int) for k in nums)):
        raise InputError(f"argnums must be an int or a non-empty tuple of ints; got {argnums!r}")
    if any(not -len(args) <= k < len(args) for k in nums):
        raise InputError(f"argnums {argnums!r} is out of range for {len(args)} argument(s)")
    nums = tuple(k % len(args) for k in nums)
    if len(set(nums)) != len(nums):
        raise InputError(f"argnums {argnums!r} repeats an argument; name each one once")
    arrays = [_argument(k, args[k]) for k in nums]
    return _Point(f, tuple(args), nums, tuple(a.shape for a in arrays),
                  tuple(not isinstance(args[k], np.ndarray) for k in nums),
                  np.concatenate([a.ravel() for a in arrays]))


def _exact_step(x: float, h: float) -> float:
    return (x + h) - x


def _each_element(point: _Point, rule, method: str) -> NumericDerivative:
    """Apply rule(m, x_m, f(x)) -> (value, error, step) to every flat element m of the point."""
    value, error, step = (np.full(point.z.size, math.nan) for _ in range(3))
    with np.errstate(all="ignore"):
        try:
            f0 = _scalar(point(point.z.copy()))
            if not math.isfinite(f0):
                raise _Unavailable(f"f is not finite at the point (f = {f0}); "
                                   f"every derivative is nan")
            for m in range(point.z.size):
                value[m], error[m], step[m] = rule(m, float(point.z[m]), f0)
        except _Unavailable as nan:
            value[:] = error[:] = step[:] = math.nan
            return NumericDerivative(point.split(value), point.split(error), point.split(step),
                                     method, nan.applicable, str(nan))
    error = np.maximum(error, TINY)
    bad = np.flatnonzero(~np.isfinite(value + error))
    reason = ""
    if bad.size:
        reason = (f"f is not finite near the point for {bad.size} element(s), first "
                  f"{point.where(bad[0])}; those derivatives are nan")
        value[bad] = error[bad] = math.nan
    return NumericDerivative(point.split(value), point.split(error), point.split(step), method,
                             reason=reason)


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
        return d1, 2 * abs(d1 - d2) + 4 * EPS * max(abs(f0), abs(f1), abs(f2)) / h, h

    point = _point(f, args, argnums)
    return _each_element(point, rule, "forward")


def _ridders(rows: list, steps: list, scales: list) -> tuple:
    """Best entry of the Richardson table over central differences at halving steps."""
    best = (math.nan, math.inf, steps[-1])
    previous = [rows[0]]
    for i in range(1, len(rows)):
        current = [rows[i]]
        for j in range(1, i + 1):
            current.append(current[j - 1] + (current[j - 1] - previous[j - 1]) / (4.0**j - 1))
        rounding = 4 * EPS * scales[i] / steps[i]
        for j, entry in enumerate(current):
            spread = abs(entry - previous[0])
            if j > 0:
                spread = max(abs(entry - current[j - 1]), abs(entry - previous[j - 1]))
            if spread + rounding <= best[1]:
                best = (entry, spread + rounding, steps[i])
        previous = current
    return best[0], 2 * best[1] + EPS * abs(best[0]), best[2]


def central_difference(f: Callable, args, argnums=0, richardson=True) -> NumericDerivative:
    """Central differences (f(x + h) - f(x - h)) / 2h, Richardson extrapolated by default.

    Returns a NumericDerivative: value, error and step tuples, one entry per argnum, each shaped
    like its argument; `step` is the smallest step behind each value.

    Example:
        >>> abs(central_difference(math.exp, (1.0,)).value[0] - math.e) < 1e-13
        True
    """

    def rule(m, x, f0):
        rows, steps, scales = [], [], []
        for k in reversed(range(LEVELS if richardson else 2)):
            h = _exact_step(x, EPS ** (1 / 3) * max(1.0, abs(x)) * 2**k)
            up, down = point.real((m, h)), point.real((m, -h))
            if not math.isfinite(up - down):
                rows, steps, scales = [], [], []
                continue
            rows.append((up - down) / (2 * h))
            steps.append(h)
            scales.append(max(abs(f0), abs(up), abs(down)))
        if len(rows) < 2:
            return math.nan, math.nan, math.nan
        if richardson:
            return _ridders(rows, steps, scales)
        return rows[1], abs(rows[1] - rows[0]) + 4 * EPS * scales[1] / steps[1], steps[1]

    point = _point(f, args, argnums)
    return _each_element(point, rule, "central, Richardson" if richardson else "central")


def _imaginary(point: _Point, m: int, x: float, h: float, moves: tuple = ()) -> float:
    """Im f(z + i h e_m) / h, with element k first moved by d for each (k, d) in moves;
    raises _Unavailable when f shows it is not analytic."""
    z = point.z.astype(complex)
    for k, d in moves:
        z[k] += d
    z[m] = complex(z[m].real if moves else x, h)
    tail = ": the complex step does not apply"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            out = point(z)
    except NotAnalyticError as exc:
        message = (str(exc).splitlines() or ["f is not analytic"])[0].rstrip(".")
        raise _Unavailable(message + ("" if "complex step" in message else tail), False) from None
    except DiffkitError:
        raise
    except TypeError as exc:
        raise _Unavailable(f"f refuses complex input ({exc})" + tail, False) from None
    except np.exceptions.ComplexWarning:
        raise _Unavailable("f discards the imaginary part of its input" + tail, False) from None
    except (ArithmeticError, ValueError):
        return math.nan
    value = np.asarray(out)
    if value.shape != () or value.dtype.kind not in "iufc":
        raise InputError(f"f must return a scalar; it returned {type(out).__name__} "
                         f"{value.dtype} of shape {value.shape}")
    if value.dtype.kind != "c":
        raise _Unavailable(f"f returned a real {type(out).__name__} for complex input (an "
                           f"operation such as abs, or f ignores {point.where(m)})" + tail, False)
    return complex(value).imag / h


def complex_step(f: Callable, args, argnums=0, h=1e-20) -> NumericDerivative:
    """Complex-step derivatives Im f(x + i h e_k) / h, exact to rounding for analytic f.

    Returns a NumericDerivative; when f is not analytic (it raises NotAnalyticError or
    TypeError on complex input, discards an imaginary part, or returns a real number)
    `applicable` is False, every value is nan and `reason` says why. A real intermediate mixed
    back into a complex result (np.abs inside a sum) cannot be seen: compare with central.

    Example:
        >>> complex_step(lambda x: x**3, (2.0,)).value[0]
        12.0
    """
    if isinstance(h, bool) or not isinstance(h, (int, float)) or not 0 < h < 1e-3:
        raise InputError(f"the complex step h must be a float in (0, 1e-3); got {h!r}")

    def rule(m, x, f0):
        value = _imaginary(point, m, x, float(h))
        return value, 4 * EPS * abs(value), float(h)

    point = _point(f, args, argnums)
    return _each_element(point, rule, "complex step")


def complex_step_hessian(f: Callable, args, argnums=0, h=1e-20) -> NumericHessian:
    """Central differences of complex-step first derivatives (the hybrid of Lai & Crassidis):
    H_jk = (D_j(x + d e_k) - D_j(x - d e_k)) / (2 d), D_j = Im f(x + i h e_j) / h, with the
    central step d = eps**(1/3) * max(1, |x_k|); symmetrised. Error: |H(d) - H(2d)| + rounding.

    Example:
        >>> H = complex_step_hessian(lambda x, y: x * x * y, (1.0, 2.0), argnums=(0, 1))
        >>> [round(float(v), 8) for v in H.value.ravel()]
        [4.0, 2.0, 2.0, 0.0]
    """
    point = _point(f, args, argnums)
    n = point.z.size
    scale = [EPS ** (1 / 3) * max(1.0, abs(float(x))) for x in point.z]
    steps = np.array([_exact_step(float(x), d) for x, d in zip(point.z, scale, strict=True)])
    value, error = np.full((n, n), math.nan), np.full((n, n), math.nan)

    def column(j, k, d):
        plus = _imaginary(point, j, 0.0, h, ((k, d),))
        minus = _imaginary(point, j, 0.0, h, ((k, -d),))
        return (plus - minus) / (2 * d), 4 * EPS * max(abs(plus), abs(minus)) / d

    with np.errstate(all="ignore"):
        try:
            for j in range(n):
                for k in range(n):
                    fine, rounding = column(j, k, steps[k])
                    coarse, _ = column(j, k, 2 * steps[k])
                    value[j, k], error[j, k] = fine, abs(fine - coarse) + rounding
        except _Unavailable as nan:
            return NumericHessian(value, error, steps, point.shapes, "complex step hessian",
                                  nan.applicable, str(nan))
    value = (value + value.T) / 2
    error = np.maximum((error + error.T) / 2 + np.abs(value - value.T), TINY)
    reason = "" if np.all(np.isfinite(value)) else "f is not finite near the point"
    return NumericHessian(value, error, steps, point.shapes, "complex step hessian",
                          reason=reason)


def hessian(f: Callable, args, argnums=0) -> NumericHessian:
    """Central second differences; mixed partials by the 4-point formula.

    Returns a NumericHessian: value and error (n, n) over the selected arguments flattened in
    order (`shapes` and `block(i, j)` recover the argument shapes), step (n,).

    Example:
        >>> H = hessian(lambda x, y: x * x * y, (1.0, 2.0), argnums=(0, 1))
        >>> round(float(H.value[0, 1]), 6)
        2.0
    """

    def second(i, j, hi, hj):
        if i == j:
            stencil = [point.real((i, hi)), point.real((i, -hi))]
            estimate = (stencil[0] - 2 * f0 + stencil[1]) / (hi * hi)
        else:
            stencil = [point.real((i, s * hi), (j, t * hj)) for s in (1, -1) for t in (1, -1)]
            estimate = (stencil[0] - stencil[1] - stencil[2] + stencil[3]) / (4 * hi * hj)
        return estimate, 4 * EPS * max(abs(f0), *map(abs, stencil)) / (hi * hj)

    point = _point(f, args, argnums)
    n = point.z.size
    value, error = np.full((n, n), math.nan), np.full((n, n), math.nan)
    scale = [EPS**0.25 * max(1.0, abs(float(x))) for x in point.z]
    steps = np.array([_exact_step(float(x), h) for x, h in zip(point.z, scale, strict=True)])
    doubled = [_exact_step(float(x), 2 * h) for x, h in zip(point.z, scale, strict=True)]
    with np.errstate(all="ignore"):
        f0 = _scalar(point(point.z.copy()))
        if not math.isfinite(f0):
            return NumericHessian(value, error, steps, point.shapes, reason=f"f is not finite "
                                  f"at the point (f = {f0}); every entry is nan")
        for i in range(n):
            for j in range(i + 1):
                fine, rounding = second(i, j, steps[i], steps[j])
                coarse, _ = second(i, j, doubled[i], doubled[j])
                value[i, j] = value[j, i] = fine
                error[i, j] = error[j, i] = abs(fine - coarse) + rounding
    error = np.maximum(error, TINY)
    bad = np.argwhere(~np.isfinite(value + error))
    reason = ""
    if bad.size:
        reason = (f"f is not finite near the point for {len(bad)} Hessian entries, first "
                  f"({point.where(bad[0][0])}, {point.where(bad[0][1])}); those entries are nan")
        value[tuple(bad.T)] = error[tuple(bad.T)] = math.nan
    return NumericHessian(value, error, steps, point.shapes, reason=reason)
