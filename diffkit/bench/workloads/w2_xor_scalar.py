"""W2-scalar, one XOR epoch of a 2-2-1 sigmoid network (squared error, SGD per sample, learning
rate 0.1) with one scalar graph per sample; the XOR data and parameters W2-batched shares."""

from __future__ import annotations

import math

import numpy as np

from diffkit.bench.idioms import (
    MICROGRAD_NOTE,
    SIGMOID_NOTE,
    jitted,
    micrograd_exp,
    sigmoid_from,
)
from diffkit.bench.protocol import Workload
from diffkit.bench.targets import all_of, compile_stretch, faster_than

NAME = "W2-scalar"
LR = 0.1
XOR = ((0.0, 0.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 0.0))
XOR_PARAMS = tuple(float(v) for v in np.random.default_rng(0).normal(size=9))


def xor_loss(sigmoid):
    """Squared error of one sample; parameters w11 w12 w21 w22 b1 b2 v1 v2 c, then x1 x2 t."""

    def loss(w11, w12, w21, w22, b1, b2, v1, v2, c, x1, x2, t):
        h1 = sigmoid(w11 * x1 + w12 * x2 + b1)
        h2 = sigmoid(w21 * x1 + w22 * x2 + b2)
        d = sigmoid(v1 * h1 + v2 * h2 + c) - t
        return d * d

    return loss


def _per_sample_sgd(g):
    """One XOR epoch, one gradient call g(*params, x1, x2, t) per sample, as the article."""

    def run():
        p = XOR_PARAMS
        for x1, x2, t in XOR:
            grads = g(*p, x1, x2, t)
            p = [v - LR * d for v, d in zip(p, grads)]
        return p

    return run


def build_diffkit(ns, size):
    return _per_sample_sgd(ns.diffkit.grad(xor_loss(ns.diffkit.sigmoid), argnums=tuple(range(9))))


def build_compiled(ns, size):
    loss = xor_loss(ns.diffkit.sigmoid)
    return _per_sample_sgd(
        ns.diffkit.compile(loss, *XOR_PARAMS, *XOR[0], argnums=tuple(range(9))).grad
    )


def build_hand(ns, size):
    def s(z):
        return 1 / (1 + math.exp(-z))

    def run():
        w11, w12, w21, w22, b1, b2, v1, v2, c = XOR_PARAMS
        for x1, x2, t in XOR:
            h1 = s(w11 * x1 + w12 * x2 + b1)
            h2 = s(w21 * x1 + w22 * x2 + b2)
            o = s(v1 * h1 + v2 * h2 + c)
            do = 2 * (o - t) * o * (1 - o)
            d1 = do * v1 * h1 * (1 - h1)
            d2 = do * v2 * h2 * (1 - h2)
            w11, w12, b1 = w11 - LR * d1 * x1, w12 - LR * d1 * x2, b1 - LR * d1
            w21, w22, b2 = w21 - LR * d2 * x1, w22 - LR * d2 * x2, b2 - LR * d2
            v1, v2, c = v1 - LR * do * h1, v2 - LR * do * h2, c - LR * do
        return [w11, w12, w21, w22, b1, b2, v1, v2, c]

    return run


def build_article(ns, size):
    a = ns.article
    loss = xor_loss(sigmoid_from(a.exp))

    def run():
        p = XOR_PARAMS
        for x1, x2, t in XOR:
            vs = [a.Variable(v) for v in p]
            grads = a.gradients(loss(*vs, x1, x2, t))
            p = [v.value - LR * grads[v] for v in vs]
        return p

    return run


def build_micrograd(ns, size):
    Value = ns.engine.Value
    loss = xor_loss(sigmoid_from(micrograd_exp(Value)))

    def run():
        p = XOR_PARAMS
        for x1, x2, t in XOR:
            vs = [Value(v) for v in p]
            loss(*vs, x1, x2, t).backward()
            p = [v.data - LR * v.grad for v in vs]
        return p

    return run


def build_autograd(ns, size):
    loss = xor_loss(sigmoid_from(ns.numpy.exp))
    return _per_sample_sgd(ns.autograd.grad(loss, argnum=tuple(range(9))))


def build_jax(ns, size, jit=False):
    g = ns.jax.grad(xor_loss(ns.nn.sigmoid), argnums=tuple(range(9)))
    if jit:
        g = ns.jax.jit(g)

    epoch = _per_sample_sgd(g)
    return lambda: ns.jax.block_until_ready(epoch())


def targets(timing) -> list:
    """>= 2x faster than the article's engine; diffkit.compile's stretch."""
    return [
        all_of(NAME, ">= 2x faster than the article's engine",
               [faster_than(timing, NAME, "article", 2.0, strict=False)]),
        *compile_stretch(timing, NAME),
    ]


WORKLOAD = Workload(
    NAME, "XOR epoch (2-2-1 sigmoid, 4 samples, SGD per sample), one graph per sample",
    {
        "diffkit": build_diffkit, "diffkit-compile": build_compiled, "hand": build_hand,
        "article": build_article,
        "micrograd": build_micrograd, "autograd": build_autograd, "jax": build_jax,
        "jax-jit": jitted(build_jax),
    },
    targets=targets,
    notes=(SIGMOID_NOTE, MICROGRAD_NOTE),
)
