"""The expression-swell study: the logistic map's derivative as SymPy sees it (raw and after
cse), as diffkit's tape holds it, and the paths a path-enumerating backward pass would walk."""

from __future__ import annotations

import time

import sympy
from sympy import S
from sympy.core.operations import LatticeOp
from sympy.simplify.radsimp import fraction

import diffkit as dk
from diffkit.experiments.catalog import baydin_derivative_l4, logistic_function

ORDER = 40  # the study's place in the report (diffkit.experiments.STUDIES)
FULL_N = 14  # SymPy's raw derivative grows about 2.3x per step: n = 15 takes ~15 s alone
QUICK_N = 10
TAPE_ONLY = (20, 30, 40, 60, 100)  # beyond SymPy: tape and path counts stay computable
POINT = 0.3


def _leading_negative(a) -> bool:
    if a.is_Mul:
        a = a.args[0]
    return bool(a.is_Number and a.is_extended_negative)


def _local_ops(a):
    """(the operations sympy.count_ops counts at node a, the subexpressions it walks next),
    following count_ops's rules for an Expr: minus signs as NEG or SUB, reciprocals as DIV."""
    ops = 0
    if a.is_Rational:
        return (int(a.p < 0) + int(a.q != 1), ()) if a is not S.One else (0, ())
    if a.is_Mul:
        if _leading_negative(a):
            ops += 1
            a = a.as_two_terms()[1] if a.args[0] is S.NegativeOne else -a
        numerator, denominator = fraction(a)
        if numerator.is_Integer:
            return ops + 1 + int(bool(numerator.is_negative)), (denominator,)
        if denominator is not S.One:
            walked = (numerator,) if denominator.is_Integer else (denominator, numerator)
            return ops + 1, walked
    elif a.is_Add:
        negative = [_leading_negative(t) for t in a.args]
        walked = tuple(-t if neg else t for t, neg in zip(a.args, negative))
        # an ADD or SUB between consecutive terms; a leading minus is a NEG only when every
        # term is negative (-x - y), otherwise it turns an ADD into a SUB (-x + y)
        return len(a.args) - 1 + int(all(negative)), walked
    if a.is_Pow and a.exp is S.NegativeOne:
        return ops + 1, (a.base,)
    if a == S.Exp1:
        return ops + 1, ()
    if a.is_Pow and a.base == S.Exp1:
        return ops + 1, (a.exp,)
    if a.is_Mul or isinstance(a, LatticeOp):
        ops += len(a.args) - 1
    elif a.args and (a.is_Pow or a.is_Function or isinstance(a, sympy.Derivative)):
        ops += 1
    return ops, (() if a.is_Symbol else a.args)


def tree_ops(expr) -> int:
    """Return sympy.count_ops(expr) for an Expr: the operations of expr written out as a tree,
    counted once per distinct subexpression (time linear in the shared graph; count_ops walks
    the tree, which is what swells: 7 s for the logistic map's n = 14 derivative).

    Example:
        >>> x = sympy.Symbol("x")
        >>> tree_ops(sympy.sin(x) * x + sympy.sin(x) ** 2), tree_ops(-x - 1 / x)
        (5, 3)
    """
    counts = {}
    stack = [expr]
    while stack:
        a = stack[-1]
        if a in counts:
            stack.pop()
            continue
        here, walked = _local_ops(a)
        missing = [b for b in walked if b not in counts]
        if missing:
            stack.extend(missing)
            continue
        stack.pop()
        counts[a] = here + sum(counts[b] for b in walked)
    return counts[expr]


def symbolic_sizes(n: int):
    """Return (count_ops of d l_n/dx as sympy.diff gives it, count_ops after cse, seconds).

    Example:
        >>> symbolic_sizes(3)[:2]
        (21, 12)
    """
    x = sympy.Symbol("x", real=True)
    started = time.perf_counter()
    derivative = sympy.diff(logistic_function(n)(x), x)
    seconds = time.perf_counter() - started
    replacements, reduced = sympy.cse(derivative)
    after = sum(tree_ops(e) for _, e in replacements) + tree_ops(reduced[0])
    return tree_ops(derivative), after, seconds


def tape_paths(entries, out_index: int) -> list:
    """Count the input-to-node paths of every tape entry (dk.trace's entries) by dynamic
    programming: a node's count is the sum of its parents' (an operand used twice counts
    twice); an argument has one. Never walks a path.

    Example:
        >>> t = dk.trace(lambda x: x * x + x, 1.0)
        >>> tape_paths(t.entries, t.output)[-1]
        3
    """
    paths = [1 if e.primitive is None else 0 for e in entries]
    for i in range(out_index + 1):
        if entries[i].primitive is not None:
            paths[i] = sum(paths[j] for _, j in entries[i].parents)
    return paths


def tape_size(n: int, x: float = POINT):
    """Return (tape entries, paths input -> output, seconds for value and gradient) for l_n.

    Example:
        >>> tape_size(4)[:2]
        (10, 8)
    """
    f = logistic_function(n)
    traced = dk.trace(f, x)
    paths = tape_paths(traced.entries, traced.output)[traced.output]
    started = time.perf_counter()
    dk.value_and_grad(f)(x)
    return len(traced.entries), paths, time.perf_counter() - started


def baydin_check() -> dict:
    """Check Baydin et al.'s Table 1: d l_4/dx expands to 64(1-42x+...-2048x^7).

    Example:
        >>> baydin_check()["matches"]
        True
    """
    x = sympy.Symbol("x", real=True)
    derivative = sympy.expand(sympy.diff(logistic_function(4)(x), x))
    expected = sympy.expand(baydin_derivative_l4(x))
    grads = [dk.grad(logistic_function(4))(v) for v in (0.1, POINT, 0.7)]
    # evaluated exactly: in floats the expanded polynomial loses digits to cancellation
    published = [float(baydin_derivative_l4(sympy.Rational(v))) for v in (0.1, POINT, 0.7)]
    return {
        "derivative": str(sympy.factor_terms(derivative)),
        "published": "64*(1 - 42*x + 504*x**2 - 2640*x**3 + 7040*x**4 - 9984*x**5 + 7168*x**6"
        " - 2048*x**7)",
        "matches": bool(sympy.simplify(derivative - expected) == 0),
        "diffkit_max_rel_error": max(abs(g - p) / abs(p) for g, p in zip(grads, published)),
    }


def run(quick: bool = False, seeds: int | None = None, progress=None) -> dict:
    """Run the study for n = 1..N; return its numbers, timing only under "timing".

    Example:
        >>> [row["tape_nodes"] for row in run(quick=True)["logistic_map"][:3]]
        [1, 4, 7]
    """
    last = QUICK_N if quick else FULL_N
    rows, timing, beyond, beyond_timing = [], [], [], []
    started = time.perf_counter()
    for n in range(1, last + 1):
        if progress and n % 4 == 0:
            progress(f"swell: n = {n}/{last}")
        ops_raw, ops_cse, symbolic_seconds = symbolic_sizes(n)
        nodes, paths, tape_seconds = tape_size(n)
        rows.append({
            "n": n, "symbolic_ops": ops_raw, "symbolic_ops_cse": ops_cse, "tape_nodes": nodes,
            "paths": paths, "paths_formula": 2 ** (n - 1),
        })
        timing.append({"n": n, "symbolic_seconds": symbolic_seconds, "tape_seconds": tape_seconds})
    for n in TAPE_ONLY:
        nodes, paths, tape_seconds = tape_size(n)
        beyond.append({"n": n, "tape_nodes": nodes, "paths": paths})
        beyond_timing.append({"n": n, "tape_seconds": tape_seconds})
    return {
        "parameters": {"quick": quick},
        "point": POINT,
        "logistic_map": rows,
        "tape_only": beyond,
        "baydin": baydin_check(),
        "timing": {
            "seconds": time.perf_counter() - started,
            "logistic_map": timing,
            "tape_only": beyond_timing,
        },
    }
