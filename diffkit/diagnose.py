"""Find the wrong derivative rule: trace f, then check every primitive application's VJP and
JVP rules against finite differences of that primitive's own implementation at its inputs."""

from __future__ import annotations

import math
import os
import sys
import warnings
from dataclasses import dataclass

import numpy as np

from diffkit import numeric
from diffkit.arguments import check_input
from diffkit.boxes import ArrayBox
from diffkit.core import new_level
from diffkit.errors import RuleError, first_line

_PACKAGE = os.path.dirname(os.path.abspath(__file__))
RTOL = 1e-6


class _Probe(ArrayBox):
    """Records every primitive applied to it, with the user's file:line."""

    __slots__ = ("value", "level", "log")

    def __init__(self, value, level, log):
        self.value = value
        self.level = level
        self.log = log

    def apply(self, prim, args, params):
        vals = [a.value if type(a) is _Probe and a.level == self.level else a for a in args]
        ans = prim(*vals, **params)
        inputs = [k for k, a in enumerate(args) if type(a) is _Probe and a.level == self.level]
        self.log.append((prim, tuple(vals), dict(params), ans, tuple(inputs), _call_site()))
        return _Probe(ans, self.level, self.log)


def _call_site() -> str:
    frame = sys._getframe(2)
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return "<diffkit>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


@dataclass(frozen=True)
class RuleCheck:
    """One rule of one primitive application, checked along random directions u, v:
    `expected` is <u, J v> by finite differences of the implementation, `got` the rule's."""

    op: str
    mode: str
    input: int
    inputs: tuple
    expected: float
    got: float
    tolerance: float
    location: str
    status: str  # "ok", "wrong", "inconclusive" (not smooth here), "raised", "missing" (None)
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status in ("ok", "inconclusive")

    def describe(self) -> str:
        """One line: what was checked, where, expected vs got."""
        shown = ", ".join(_short(v) for v in self.inputs)
        head = f"{self.op}({shown}) at {self.location}: {self.mode.upper()} for input {self.input}"
        if self.status == "missing":
            return f"{head} is missing ({self.note})"
        if self.status == "raised":
            return f"{head} raised {self.note}"
        return (f"{head} is {self.status}: expected {self.expected:.12g}, got {self.got:.12g}"
                + (f" ({self.note})" if self.note else ""))


@dataclass(frozen=True)
class Diagnosis:
    """Every rule check of a traced function; `first_wrong` is the earliest failing one."""

    checks: tuple
    applications: int

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def first_wrong(self) -> RuleCheck | None:
        return next((c for c in self.checks if not c.ok), None)

    def __str__(self):
        wrong = [c for c in self.checks if not c.ok]
        head = f"{len(self.checks)} rules checked over {self.applications} primitive applications: "
        if not wrong:
            return head + "all rules agree with finite differences"
        lines = [head + f"{len(wrong)} wrong", "first wrong rule: " + wrong[0].describe()]
        lines += ["also: " + c.describe() for c in wrong[1:6]]
        return "\n".join(lines)


def _short(v) -> str:
    if np.ndim(v) == 0:
        return f"{complex(v).real:.6g}" if np.isrealobj(v) else repr(v)
    return f"array{np.shape(v)}"


def diagnose(f, *args, seed: int = 0, rtol: float = RTOL) -> Diagnosis:
    """Check the VJP and JVP rule of every primitive f applies at args.

    Each rule is compared with a Richardson-extrapolated central difference of the primitive's
    own implementation, along seeded random directions, at that application's inputs.

    Example:
        >>> import diffkit as dk
        >>> diagnose(lambda x, y: dk.sin(x) * y, 0.5, 2.0).ok
        True
    """
    level = new_level()
    log = []
    probes = [_Probe(check_input(a, k), level, log) for k, a in enumerate(args)]
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        f(*probes)
        rng = np.random.default_rng(seed)
        checks = []
        for prim, vals, params, ans, inputs, where in log:
            for k in inputs:
                checks.extend(_check(prim, vals, params, ans, k, where, rng, rtol))
    return Diagnosis(tuple(checks), len(log))


def _random_like(rng, x):
    return float(rng.normal()) if np.ndim(x) == 0 else rng.normal(size=np.shape(x))


def _check(prim, vals, params, ans, k, where, rng, rtol):
    x = vals[k]
    if np.iscomplexobj(x) or (isinstance(x, np.ndarray) and x.dtype.kind not in "f"):
        return []
    # scalar in, scalar out: u = v = 1, so expected and got are the derivative itself
    scalar = np.ndim(x) == 0 and np.ndim(ans) == 0
    v = 1.0 if scalar else _random_like(rng, x)
    u = 1.0 if scalar else _random_like(rng, ans)

    def along(s):
        moved = list(vals)
        moved[k] = x + s * v
        return float(np.sum(u * np.asarray(prim(*moved, **params), dtype=float)))

    fd = numeric.central_difference(along, (0.0,), 0, richardson=True)
    expected, estimate = float(fd.value[0]), float(fd.error[0])
    scale = abs(expected) + float(np.sum(np.abs(u))) * float(np.sum(np.abs(v))) * 1e-3
    tolerance = rtol * scale + 10 * estimate
    smooth = math.isfinite(estimate) and estimate <= 1e-4 * max(1.0, scale)
    out = []
    for mode, rules in (("vjp", prim.vjp), ("jvp", prim.jvp)):
        rule = rules[k] if k < len(rules) else None
        base = (prim.name, mode, k, vals, expected)
        if rule is None:
            if smooth and abs(expected) > tolerance:  # f depends on the input: a rule is owed
                out.append(RuleCheck(*base, math.nan, tolerance, where, "missing",
                                     f"no {mode.upper()} rule for input {k}, but the "
                                     f"operation depends on it"))
            continue
        try:
            if mode == "vjp":
                got = float(np.sum(np.asarray(rule(u, ans, *vals, **params)) * v))
            else:
                got = float(np.sum(u * np.asarray(rule(v, ans, *vals, **params))))
        except RuleError as error:  # the placeholder of a rule never defined
            out.append(RuleCheck(*base, math.nan, tolerance, where, "missing", str(error)))
            continue
        except Exception as error:  # a rule that exists and fails
            first = first_line(error)
            out.append(RuleCheck(*base, math.nan, tolerance, where, "raised",
                                 f"{type(error).__name__}: {first}"))
            continue
        if abs(got - expected) <= tolerance or (math.isnan(got) and math.isnan(expected)):
            status, note = "ok", ""
        elif not smooth:
            status, note = "inconclusive", "not smooth here: finite differences are unreliable"
        else:
            status, note = "wrong", ""
        out.append(RuleCheck(*base, got, tolerance, where, status, note))
    return out
