"""Every primitive's VJP and JVP rules, at every shape its case allows (tests/cases.py), against
references that share no code with them:

- transposition: <u, JVP(v)> = <VJP(u), v> for random u, v (the two rules are written
  independently, so this is a real check, and it needs no finite differences);
- first order: the rules applied to symbolic cotangents and tangents, read back by sympy.diff,
  equal the Jacobian of the primitive's SymPy counterpart traced on arrays of symbols, at 30
  digits; the engines' VJP, JVP and full Jacobians at the case's point match it to rounding;
- second order: grad of grad (reverse over reverse) and dk.hessian (forward over reverse) equal
  SymPy's second derivatives at 30 digits.
"""

import functools
import math
import zlib
from pathlib import Path

import numpy as np
import pytest
import sympy
from cases import ALL, CASES, differentiable_inputs, variant_id

import diffkit as dk
from diffkit import ops

DIGITS = 30
EXACT = sympy.Float(10.0 ** (5 - DIGITS))  # symbolic rules: equal to SymPy at 25 digits
ROUNDING = 1e-13  # float64 results: relative to the sum of the magnitudes that were added
TRANSPOSE = 1e-12

DIFFERENTIABLE = [n for n in ALL if differentiable_inputs(ops.PRIMITIVES[n])]
POINTS = [(n, v) for n in DIFFERENTIABLE for v in CASES[n].variants]
INPUTS = [(n, v, k) for n, v in POINTS for k in differentiable_inputs(ops.PRIMITIVES[n])]


def _point_id(value):
    return variant_id(value) if isinstance(value, tuple | str) else str(value)


def _seed(name, variant, salt=""):
    """A seed fixed by the test's identity (hash() is salted per process: pytest -n)."""
    return zlib.crc32(f"{name}/{variant_id(variant)}/{salt}".encode())


def _draw(name, variant):
    return CASES[name].draw(np.random.default_rng(_seed(name, variant)), variant)


def _symbol_array(prefix, shape):
    """Real SymPy symbols shaped like `shape`: one symbol for (), else an object array."""
    if shape == ():
        return sympy.Symbol(prefix, real=True)
    count = int(np.prod(shape))
    entries = [sympy.Symbol(f"{prefix}_{i}", real=True) for i in range(count)]
    return np.array(entries, dtype=object).reshape(shape)


def _entries(x):
    """The entries of a number, SymPy expression or array, in C order, as SymPy objects."""
    return [sympy.sympify(e) for e in np.ravel(np.asarray(x, dtype=object))]


def _traced(name, variant):
    """(prim, args, params, symbols per input (None: not differentiable), exact point)."""
    prim = ops.PRIMITIVES[name]
    args, params = _draw(name, variant)
    diff = differentiable_inputs(prim)
    syms = [_symbol_array(f"x{k}", np.shape(a)) if k in diff else None
            for k, a in enumerate(args)]
    point = {
        s: sympy.Float(float(v), 2 * DIGITS)  # the float's exact binary value
        for k, a in enumerate(args) if syms[k] is not None
        for s, v in zip(_entries(syms[k]), np.ravel(a))
    }
    return prim, args, params, syms, point


def _symbolic_args(args, syms):
    return [a if s is None else s for a, s in zip(args, syms)]


def _at(expr, point):
    return sympy.N(sympy.sympify(expr).xreplace(point), DIGITS)


@functools.cache
def _jacobian(name, variant, k):
    """d out / d input k from sympy.diff of the SymPy counterpart, at the case's point to 30
    digits: an object array of SymPy numbers, shape (out.size, input.size)."""
    prim, args, params, syms, point = _traced(name, variant)
    out = prim(*_symbolic_args(args, syms), **params)
    assert all(isinstance(o, sympy.Basic) for o in _entries(out))  # the SymPy counterpart ran
    rows = [[_at(sympy.diff(o, s), point) for s in _entries(syms[k])] for o in _entries(out)]
    return np.array(rows, dtype=object).reshape(len(rows), -1)


def _close_exact(computed, expected):
    return abs(computed - expected) <= EXACT * (1 + abs(expected))


def _input_function(prim, args, params, k):
    """The primitive as a function of input k alone, the other inputs held at the case's."""

    def f(x):
        full = list(args)
        full[k] = x
        return prim(*full, **params)

    return f


def _random_like(rng, x):
    return float(rng.normal()) if np.shape(x) == () else rng.normal(size=np.shape(x))


def _within_rounding(computed, expected, magnitude, what):
    excess = np.abs(np.ravel(computed) - np.ravel(expected)) - ROUNDING * np.ravel(magnitude)
    assert np.all(excess <= 1e-300), f"{what}: {np.ravel(computed)} != {np.ravel(expected)}"


# ---- transposition: the VJP rule is the transpose of the JVP rule --------------------------


@pytest.mark.parametrize(("name", "variant", "k"), INPUTS, ids=_point_id)
def test_vjp_is_the_transpose_of_jvp(name, variant, k):
    prim, args, params, _, _ = _traced(name, variant)
    f = _input_function(prim, args, params, k)
    rng = np.random.default_rng(_seed(name, variant, f"transpose {k}"))
    v = _random_like(rng, args[k])
    out, jv = dk.jvp(f, (args[k],), (v,))
    u = _random_like(rng, out)
    out_again, pullback = dk.vjp(f, args[k])
    (vu,) = pullback(u)
    assert np.shape(jv) == np.shape(out) == np.shape(out_again)
    assert np.shape(vu) == np.shape(args[k])
    lhs, rhs = np.sum(u * jv), np.sum(vu * v)
    scale = np.sum(np.abs(u * jv)) + np.sum(np.abs(vu * v))
    assert abs(lhs - rhs) <= TRANSPOSE * scale, f"<u, J v> = {lhs} but <J^T u, v> = {rhs}"


# ---- first order: rules and engines against the Jacobian of the SymPy counterpart ----------


@pytest.mark.parametrize(("name", "variant", "k"), INPUTS, ids=_point_id)
def test_rules_on_symbolic_cotangents_and_tangents_are_the_sympy_jacobian(name, variant, k):
    prim, args, params, syms, point = _traced(name, variant)
    exact = _jacobian(name, variant, k)
    symbolic = CASES[name].rules_on_symbols
    primals = _symbolic_args(args, syms) if symbolic else list(args)
    ans = prim(*primals, **params)
    cotangent = _symbol_array("g", np.shape(ans))
    tangent = _symbol_array("t", np.shape(args[k]))
    # broadcasting is the engine's: sum a cotangent to its input's shape, spread a tangent
    pulled = _entries(ops.sum_to(prim.vjp[k](cotangent, ans, *primals, **params),
                                 np.shape(args[k])))
    pushed = prim.jvp[k](tangent, ans, *primals, **params)
    pushed = _entries(np.broadcast_to(np.asarray(pushed, dtype=object), np.shape(ans)))
    gs, ts = _entries(cotangent), _entries(tangent)
    assert (len(pulled), len(pushed)) == (len(ts), len(gs)) == exact.shape[::-1]
    zero_g, zero_t = {g: 0 for g in gs}, {t: 0 for t in ts}
    for i, p in enumerate(pulled):
        assert _at(p.xreplace(zero_g), point) == 0, f"{name} vjp[{k}] is not linear"
        for o, g in enumerate(gs):
            by_vjp = _at(sympy.diff(p, g), point)
            assert by_vjp.is_number, f"{name} vjp[{k}] is not linear in the cotangent"
            assert _close_exact(by_vjp, exact[o, i]), (
                f"{name} vjp[{k}] entry ({o}, {i}): {by_vjp} != {exact[o, i]}")
    for o, p in enumerate(pushed):
        assert _at(p.xreplace(zero_t), point) == 0, f"{name} jvp[{k}] is not linear"
        for i, t in enumerate(ts):
            by_jvp = _at(sympy.diff(p, t), point)
            assert by_jvp.is_number, f"{name} jvp[{k}] is not linear in the tangent"
            assert _close_exact(by_jvp, exact[o, i]), (
                f"{name} jvp[{k}] entry ({o}, {i}): {by_jvp} != {exact[o, i]}")


@pytest.mark.parametrize(("name", "variant", "k"), INPUTS, ids=_point_id)
def test_engines_match_the_sympy_jacobian_at_the_point(name, variant, k):
    prim, args, params, _, _ = _traced(name, variant)
    exact = _jacobian(name, variant, k).astype(float)
    f = _input_function(prim, args, params, k)
    rng = np.random.default_rng(_seed(name, variant, f"jacobian {k}"))
    out = prim(*args, **params)
    u, v = _random_like(rng, out), _random_like(rng, args[k])
    (by_vjp,) = dk.vjp(f, args[k])[1](u)
    by_jvp = dk.jvp(f, (args[k],), (v,))[1]
    u, v = np.ravel(u), np.ravel(v)
    _within_rounding(by_vjp, exact.T @ u, np.abs(exact.T) @ np.abs(u), f"{name} vjp[{k}]")
    _within_rounding(by_jvp, exact @ v, np.abs(exact) @ np.abs(v), f"{name} jvp[{k}]")
    for transform in (dk.jacobian, dk.jacfwd):  # every entry: one basis vector at a time
        full = np.reshape(transform(f)(args[k]), exact.shape)
        _within_rounding(full, exact, np.abs(exact), f"{name} {transform.__name__}[{k}]")


# ---- second order: grad of grad and the Hessian against SymPy's second derivatives ----------


def _weights(name, variant, shape):
    """Fixed weights that give every output entry its own share of a scalar: floats, and the
    same numbers exactly as SymPy numbers."""
    rng = np.random.default_rng(_seed(name, variant, "weights"))
    w = rng.uniform(0.5, 1.5, size=shape)
    return _floats(w, shape), [sympy.Float(float(e), 2 * DIGITS) for e in np.ravel(w)]


def _floats(values, shape):
    return float(values) if shape == () else values


@functools.cache
def _exact_hessian(name, variant):
    """Blocks [a][b] of d2 F / (d input a, d input b) over the differentiable inputs, F the
    weighted sum of the outputs, from sympy.diff at 30 digits: float arrays of shape
    (input a size, input b size)."""
    prim, args, params, syms, point = _traced(name, variant)
    out = prim(*_symbolic_args(args, syms), **params)
    _, exact_weights = _weights(name, variant, np.shape(out))
    total = sum(w * o for w, o in zip(exact_weights, _entries(out)))
    diff = differentiable_inputs(prim)
    blocks = []
    for a in diff:
        first = [sympy.diff(total, s) for s in _entries(syms[a])]
        blocks.append([
            np.array([[float(_at(sympy.diff(d, s), point)) for s in _entries(syms[b])]
                      for d in first])
            for b in diff
        ])
    return blocks


@pytest.mark.parametrize(("name", "variant"), POINTS, ids=_point_id)
def test_second_derivatives_equal_sympy(name, variant):
    prim, args, params, _, _ = _traced(name, variant)
    diff = differentiable_inputs(prim)
    weights, _ = _weights(name, variant, np.shape(prim(*args, **params)))

    def total(*xs):
        full = list(args)
        for k, x in zip(diff, xs):
            full[k] = x
        return dk.sum(prim(*full, **params) * weights)

    xs = [args[k] for k in diff]
    exact = _exact_hessian(name, variant)
    argnums = tuple(range(len(diff)))
    by_hessian = dk.hessian(total, argnums)(*xs)
    for a in argnums:
        for b in argnums:
            if np.shape(xs[a]) == () and np.shape(xs[b]) == ():
                nested = dk.grad(lambda *ys, a=a: dk.grad(total, a)(*ys), b)(*xs)
            else:
                nested = dk.jacobian(lambda *ys, a=a: dk.grad(total, a)(*ys), b)(*xs)
            expected = exact[a][b]
            shape = np.shape(xs[a]) + np.shape(xs[b])
            for how, computed in (("grad of grad", nested), ("hessian", by_hessian[a][b])):
                assert np.shape(computed) == shape, f"{how} block ({a}, {b})"
                _within_rounding(np.reshape(computed, expected.shape), expected,
                                 np.abs(expected) + np.max(np.abs(expected), initial=0.0),
                                 f"{name} {how} block ({a}, {b})")


# ---- a test that replaces a built-in rule leaves it as it found it ---------------------------


def test_a_replaced_rule_never_leaks_into_the_next_test(pytester):
    pytester.makeconftest((Path(__file__).parent / "conftest.py").read_text())
    pytester.makepyfile(test_leaks="""
        import math

        import diffkit as dk
        from diffkit import ops
        from diffkit.core import set_rules

        def test_fixture_replaces_then_fails(replace_rule):
            replace_rule(ops.sin, "vjp", 0, lambda g, ans, x: 2 * g)
            assert dk.grad(dk.sin)(1.0) == 2.0
            raise AssertionError("a failing test still gets its rule back")

        def test_sees_the_built_in_rule_again():
            assert dk.grad(dk.sin)(1.0) == math.cos(1.0)

        def test_leaks_by_hand():
            set_rules(ops.cos, "jvp", (lambda t, ans, x: t,))

        def test_sees_cos_restored():
            assert dk.jvp(dk.cos, (1.0,), (1.0,))[1] == -math.sin(1.0)
    """)
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_leaks_by_hand*",
                                "the test left built-in rules replaced: cos; *"])
    assert dk.grad(dk.sin)(1.0) == math.cos(1.0)
