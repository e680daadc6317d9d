"""W4, the logistic map l_(k+1) = 4 l_k (1 - l_k): d l_n / dx at x = 0.3 for n up to 10^4, where
path-enumerating engines and SymPy grow exponentially; the growth fit and its linearity goal."""

from __future__ import annotations

import numpy as np

from diffkit.bench.idioms import jax_run, jitted
from diffkit.bench.protocol import Target, Workload

NAME = "W4"
LOGISTIC_X = 0.3


def logistic(n):
    """l_(n+1) as a function of l_1 = x (the catalog's convention): n steps of the map."""

    def l_n(x):
        for _ in range(n):
            x = 4 * x * (1 - x)
        return x

    return l_n


def build_diffkit(ns, size):
    g = ns.diffkit.grad(logistic(size))
    return lambda: g(LOGISTIC_X)


def build_compiled(ns, size):
    g = ns.diffkit.compile(logistic(size), LOGISTIC_X).grad
    return lambda: g(LOGISTIC_X)


def build_hand(ns, size):
    def run():
        x, d = LOGISTIC_X, 1.0
        for _ in range(size):
            d *= 4 * (1 - 2 * x)
            x = 4 * x * (1 - x)
        return d

    return run


def build_article(ns, size):
    a = ns.article
    l_n = logistic(size)

    def run():
        x = a.Variable(LOGISTIC_X)
        return a.gradients(l_n(x))[x]

    return run


def build_sympy(ns, size):
    sympy = ns.sympy
    x = sympy.Symbol("x")
    l_n = logistic(size)

    def run():
        return float(sympy.diff(l_n(x), x).subs(x, LOGISTIC_X))

    return run


def build_micrograd(ns, size):
    Value = ns.engine.Value
    l_n = logistic(size)

    def run():
        x = Value(LOGISTIC_X)
        l_n(x).backward()
        return x.grad

    return run


def build_autograd(ns, size):
    g = ns.autograd.grad(logistic(size))
    return lambda: g(LOGISTIC_X)


def build_torch(ns, size):
    torch = ns.torch
    l_n = logistic(size)

    def run():
        x = torch.tensor(LOGISTIC_X, dtype=torch.float64, requires_grad=True)
        return torch.autograd.grad(l_n(x), (x,))[0]

    return run


def build_jax(ns, size, jit=False):
    return jax_run(ns, ns.jax.grad(logistic(size)), (LOGISTIC_X,), jit)


def sympy_derivative_ops(n):
    """How many operations SymPy's raw (unsimplified) d l_n / dx has."""
    import sympy

    x = sympy.Symbol("x")
    return int(sympy.count_ops(sympy.diff(logistic(n)(x), x)))


def growth(rows, quick) -> dict:
    """The cost's growth: log-log slope for diffkit and the linear engines (1 = linear in n),
    factor per step for the article's algorithm and SymPy; SymPy's operation counts up to n = 10
    (quick) or 13."""
    largest_counted = 10 if quick else 13
    fits = {}
    for engine in ("diffkit", "hand", "article", "sympy", "torch", "autograd", "micrograd"):
        points = [(r["size"], r["median_s"]) for r in rows
                  if r["engine"] == engine and r.get("median_s")]
        if len(points) < 3:
            continue
        n = np.array([p[0] for p in points], dtype=float)
        t = np.array([p[1] for p in points])
        if engine in ("article", "sympy"):
            steps = n >= 6
            if steps.sum() >= 2:
                slope = np.polyfit(n[steps], np.log(t[steps]), 1)[0]
                fits[engine] = {"per_step_factor": float(np.exp(slope)),
                                "fit": f"log t vs n, n >= 6 ({int(steps.sum())} points)"}
        else:
            large = n >= 100
            if large.sum() >= 2:
                slope = np.polyfit(np.log(n[large]), np.log(t[large]), 1)[0]
                fits[engine] = {"loglog_slope": float(slope),
                                "fit": f"log t vs log n, n >= 100 ({int(large.sum())} points)"}
    ops = {}
    sympy_sizes = sorted(r["size"] for r in rows if r["engine"] == "sympy" and r.get("median_s"))
    for n in sympy_sizes:
        if n > largest_counted:
            break
        ops[str(n)] = sympy_derivative_ops(n)
    return {"growth": fits, "sympy_derivative_ops": ops}


def ops_line(result) -> list:
    """The Markdown line of SymPy's operation counts, when there are any."""
    counts = result.get("sympy_derivative_ops")
    if not counts:
        return []
    text = ", ".join(f"n={n}: {c:,}" for n, c in counts.items())
    return [f"- SymPy's raw derivative, operations (count_ops): {text}"]


def targets(timing) -> list:
    """diffkit's time linear in n (log-log slope within 0.8 - 1.2)."""
    fits = timing[NAME].get("growth", {})
    slope = fits.get("diffkit", {}).get("loglog_slope")
    holds = None if slope is None else 0.8 <= slope <= 1.2
    detail = "not enough sizes" if slope is None else f"log-log slope {slope:.2f}"
    article = fits.get("article", {}).get("per_step_factor")
    if article is not None:
        detail += f"; the article's algorithm: x{article:.2f} per step"
    return [Target(NAME, "time linear in n (log-log slope ~ 1)", holds, detail)]


WORKLOAD = Workload(
    NAME, "logistic map l_(k+1) = 4 l_k (1 - l_k): d l_n / dx at x = 0.3",
    {
        "diffkit": build_diffkit, "diffkit-compile": build_compiled, "hand": build_hand,
        "article": build_article, "sympy": build_sympy,
        "micrograd": build_micrograd, "autograd": build_autograd, "torch": build_torch,
        "jax": build_jax, "jax-jit": jitted(build_jax),
    },
    sizes=(2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 100, 1000, 10**4),
    quick_sizes=(2, 4, 6, 8, 10, 12, 14, 16, 100, 1000),
    size_label="n",
    rtol=1e-6,
    max_size={
        "article": (30, "skipped: 2^n paths (the time doubles per step)"),
        "sympy": (30, "skipped: the derivative grows ~2.3x per step"),
    },
    targets=targets,
    analyse=growth,
    summary=ops_line,
    notes=(
        "W4's derivative overflows past n ~ 1000 (chaotic map, |d l_n/dx| ~ 2^n): there a "
        "non-finite result (inf from a product, nan from inf - inf in a sum) agrees with any "
        "other.",
        "W4's n is the number of map steps: it differentiates l_(n+1), with l_1 = x as in the "
        "catalog and Baydin et al. (1,056,768 SymPy operations at n = 13).",
    ),
)
