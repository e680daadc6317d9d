"""W3, the single-unit sigmoid chain y_i = s(w_i y_(i-1)), C = (3 - y_D)^2: the value and
dC/dy_0 at depths D up to 10^6; its goals: no failure, and within 10x of the hand-written pass."""

from __future__ import annotations

import math

import numpy as np

from diffkit.bench.idioms import (
    MICROGRAD_NOTE,
    SIGMOID_NOTE,
    jax_run,
    jitted,
    micrograd_exp,
    sigmoid_from,
)
from diffkit.bench.protocol import Target, Workload
from diffkit.bench.targets import all_of, faster_than

NAME = "W3"
CHAIN_X = 0.5


def chain_weights(depth):
    """Fixed weights w_1 ... w_D (Python floats), the same for every engine."""
    return [float(w) for w in np.random.default_rng(1).uniform(0.5, 1.5, size=depth)]


def chain_cost(sigmoid, ws):
    """C(x) = (3 - y_D)^2 with y_0 = x, y_i = sigmoid(w_i y_(i-1))."""

    def cost(x):
        y = x
        for w in ws:
            y = sigmoid(w * y)
        d = 3.0 - y
        return d * d

    return cost


def build_diffkit(ns, size):
    vg = ns.diffkit.value_and_grad(chain_cost(ns.diffkit.sigmoid, chain_weights(size)))
    return lambda: vg(CHAIN_X)


def build_compiled(ns, size):
    cost = chain_cost(ns.diffkit.sigmoid, chain_weights(size))
    vg = ns.diffkit.compile(cost, CHAIN_X).value_and_grad
    return lambda: vg(CHAIN_X)


def build_hand(ns, size):
    ws = chain_weights(size)

    def run():
        ys = [CHAIN_X]
        y = CHAIN_X
        for w in ws:
            y = 1 / (1 + math.exp(-w * y))
            ys.append(y)
        g = -2 * (3.0 - y)
        for i in range(len(ws), 0, -1):
            y = ys[i]
            g *= y * (1 - y) * ws[i - 1]
        return (3.0 - ys[-1]) ** 2, g

    return run


def build_article(ns, size):
    a = ns.article
    cost = chain_cost(sigmoid_from(a.exp), chain_weights(size))

    def run():
        x = a.Variable(CHAIN_X)
        out = cost(x)
        return out.value, a.gradients(out)[x]

    return run


def build_micrograd(ns, size):
    Value = ns.engine.Value
    cost = chain_cost(sigmoid_from(micrograd_exp(Value)), chain_weights(size))

    def run():
        x = Value(CHAIN_X)
        out = cost(x)
        out.backward()
        return out.data, x.grad

    return run


def build_autograd(ns, size):
    cost = chain_cost(sigmoid_from(ns.numpy.exp), chain_weights(size))
    vg = ns.autograd.value_and_grad(cost)
    return lambda: vg(CHAIN_X)


def build_torch(ns, size):
    torch = ns.torch
    cost = chain_cost(torch.sigmoid, chain_weights(size))

    def run():
        x = torch.tensor(CHAIN_X, dtype=torch.float64, requires_grad=True)
        out = cost(x)
        (g,) = torch.autograd.grad(out, (x,))
        return out.detach(), g

    return run


def build_jax(ns, size, jit=False):
    vg = ns.jax.value_and_grad(chain_cost(ns.nn.sigmoid, chain_weights(size)))
    return jax_run(ns, vg, (CHAIN_X,), jit)


def targets(timing) -> list:
    """No failure of diffkit up to the deepest chain timed; within 10x of the hand-written
    float reverse pass at D >= 1000."""
    rows = [r for r in timing[NAME]["rows"] if r["engine"] == "diffkit"]
    failed = [r for r in rows if r["status"] != "ok"]
    deepest = max((r["size"] for r in rows if r["status"] == "ok"), default=None)
    checks = [faster_than(timing, NAME, "hand", 0.1, size=r["size"], strict=False)
              for r in rows if r["size"] >= 1000]
    return [
        Target(NAME, "no failure up to the deepest chain timed", not failed and bool(rows),
               f"deepest D = {deepest}; failures: {len(failed)}"),
        all_of(NAME, "within 10x of the hand-written float reverse pass (D >= 1000)", checks),
    ]


WORKLOAD = Workload(
    NAME, "sigmoid chain y_i = s(w_i y_(i-1)), C = (3 - y_D)^2: value and dC/dy_0",
    {
        "diffkit": build_diffkit, "diffkit-compile": build_compiled, "hand": build_hand,
        "article": build_article,
        "micrograd": build_micrograd, "autograd": build_autograd, "torch": build_torch,
        "jax": build_jax, "jax-jit": jitted(build_jax),
    },
    sizes=(10, 100, 1000, 10**4, 10**5, 10**6),
    quick_sizes=(10, 100, 1000, 10**4),
    size_label="D",
    max_size={
        "diffkit-compile": (10**4, "skipped: compiling writes ~10 lines per link (1.7 s at "
                                   "D = 10^4); compile is for small graphs called often"),
    },
    targets=targets,
    notes=(SIGMOID_NOTE, MICROGRAD_NOTE,
           "W3 differentiates with respect to y_0 with the weights w_i fixed (Python floats)."),
)
