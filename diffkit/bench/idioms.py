"""Pieces the workloads share to write a computation in an engine's own idiom: a sigmoid from
exp, micrograd's missing exp, and a JAX run that jits if asked and waits for its result."""

from __future__ import annotations

import math

SIGMOID_NOTE = (
    "Each engine is written in its own idiom: diffkit and JAX use their sigmoid primitive, "
    "PyTorch torch.sigmoid; the article's engine, micrograd and autograd write 1/(1+exp(-z))."
)
MICROGRAD_NOTE = (
    "micrograd ships no exp (only +, *, ** by a number, relu): its exp is one node added the "
    "way micrograd writes relu (value math.exp, backward out.data * out.grad); 1/v is "
    "micrograd's own v**-1 * 1 and -v its v * -1."
)


def sigmoid_from(exp):
    """z -> 1 / (1 + exp(-z)), for an engine without a sigmoid of its own."""
    return lambda z: 1 / (1 + exp(-z))


def micrograd_exp(Value):
    """e**v as a micrograd node, written the way micrograd writes relu (it ships no exp)."""

    def exp(v):
        out = Value(math.exp(v.data), (v,), "exp")

        def _backward():
            v.grad += out.data * out.grad

        out._backward = _backward
        return out

    return exp


def jax_run(ns, fn, args, jit):
    """A run calling fn(*args), jitted if asked, that waits for JAX's asynchronous result."""
    fn = ns.jax.jit(fn) if jit else fn
    return lambda: ns.jax.block_until_ready(fn(*args))


def jitted(build):
    """The builder `build(ns, size, jit=True)`: the jax-jit engine of a JAX builder."""
    return lambda ns, size: build(ns, size, jit=True)
