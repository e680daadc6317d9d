"""W1, the article's sigmoid neuron: the gradient of f(x, w, b) = 1 / (1 + exp(-(w x + b))) at
(1, 0, 0), one call, in every engine; its goals against the article's engine and the peers."""

from __future__ import annotations

import math

from diffkit.bench.idioms import MICROGRAD_NOTE, jax_run, jitted, micrograd_exp
from diffkit.bench.protocol import Workload
from diffkit.bench.targets import all_of, compile_stretch, faster_than

NAME = "W1"


def neuron(exp):
    """f(x, w, b) = 1 / (1 + exp(-(w x + b))) written with the engine's `exp`."""

    def f(x, w, b):
        return 1 / (1 + exp(-(w * x + b)))

    return f


def build_diffkit(ns, size):
    g = ns.diffkit.grad(neuron(ns.diffkit.exp), argnums=(0, 1, 2))
    return lambda: g(1.0, 0.0, 0.0)


def build_compiled(ns, size):
    g = ns.diffkit.compile(neuron(ns.diffkit.exp), 1.0, 0.0, 0.0, argnums=(0, 1, 2)).grad
    return lambda: g(1.0, 0.0, 0.0)


def build_hand(ns, size):
    def run():
        x, w, b = 1.0, 0.0, 0.0
        s = 1 / (1 + math.exp(-(w * x + b)))
        d = s * (1 - s)
        return d * w, d * x, d

    return run


def build_article(ns, size):
    a = ns.article
    f = neuron(a.exp)

    def run():
        x, w, b = a.Variable(1.0), a.Variable(0.0), a.Variable(0.0)
        grads = a.gradients(f(x, w, b))
        return grads[x], grads[w], grads[b]

    return run


def build_micrograd(ns, size):
    Value = ns.engine.Value
    f = neuron(micrograd_exp(Value))

    def run():
        x, w, b = Value(1.0), Value(0.0), Value(0.0)
        f(x, w, b).backward()
        return x.grad, w.grad, b.grad

    return run


def build_autograd(ns, size):
    g = ns.autograd.grad(neuron(ns.numpy.exp), argnum=(0, 1, 2))
    return lambda: g(1.0, 0.0, 0.0)


def build_torch(ns, size):
    torch = ns.torch
    f = neuron(torch.exp)

    def run():
        x, w, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.0, 0, 0))
        return torch.autograd.grad(f(x, w, b), (x, w, b))

    return run


def build_jax(ns, size, jit=False):
    g = ns.jax.grad(neuron(ns.numpy.exp), argnums=(0, 1, 2))
    return jax_run(ns, g, (1.0, 0.0, 0.0), jit)


def build_mygrad(ns, size):
    mg = ns.mygrad
    f = neuron(mg.exp)

    def run():
        x, w, b = mg.tensor(1.0), mg.tensor(0.0), mg.tensor(0.0)
        f(x, w, b).backward()
        return x.grad, w.grad, b.grad

    return run


def targets(timing) -> list:
    """>= 2x faster than the article's engine and micrograd, faster than PyTorch eager and JAX
    jit; diffkit.compile's stretch."""
    return [
        all_of(NAME, ">= 2x faster than the article's engine and micrograd",
               [faster_than(timing, NAME, p, 2.0, strict=False) for p in ("article", "micrograd")]),
        all_of(NAME, "faster than PyTorch eager and JAX jit",
               [faster_than(timing, NAME, p, 1.0) for p in ("torch", "jax-jit")]),
        *compile_stretch(timing, NAME),
    ]


WORKLOAD = Workload(
    NAME, "sigmoid neuron: gradient of 1/(1+exp(-(w*x+b))) at (1, 0, 0), per call",
    {
        "diffkit": build_diffkit, "diffkit-compile": build_compiled, "hand": build_hand,
        "article": build_article,
        "micrograd": build_micrograd, "autograd": build_autograd, "torch": build_torch,
        "jax": build_jax, "jax-jit": jitted(build_jax), "mygrad": build_mygrad,
    },
    targets=targets,
    notes=(
        "W1 is the article's f written out, 1/(1+exp(-(w*x+b))), in every engine.",
        MICROGRAD_NOTE,
    ),
)
