"""W2-batched, the W2-scalar epoch as one full-batch step on arrays (X 4x2, a 2-2-1 sigmoid
network, squared error, learning rate 0.1); its goal against the eager array engines."""

from __future__ import annotations

import numpy as np

from diffkit.bench.idioms import SIGMOID_NOTE, jax_run, jitted, sigmoid_from
from diffkit.bench.protocol import Workload
from diffkit.bench.targets import all_of, faster_than
from diffkit.bench.workloads.w2_xor_scalar import LR, XOR, XOR_PARAMS

NAME = "W2-batched"


def xor_arrays(dtype=np.float64):
    """The XOR data and XOR_PARAMS as arrays: X (4, 2), T (4, 1), W1 (2, 2), b1, W2 (2, 1), b2."""
    w11, w12, w21, w22, b1, b2, v1, v2, c = XOR_PARAMS
    X = np.array([s[:2] for s in XOR], dtype=dtype)
    T = np.array([[s[2]] for s in XOR], dtype=dtype)
    params = (
        np.array([[w11, w21], [w12, w22]], dtype=dtype),
        np.array([b1, b2], dtype=dtype),
        np.array([[v1], [v2]], dtype=dtype),
        np.array([c], dtype=dtype),
    )
    return X, T, params


def _batch_loss(sigmoid, total, X, T):
    def loss(W1, b1, W2, b2):
        d = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2) - T
        return total(d * d)

    return loss


def build_diffkit(ns, size):
    dk = ns.diffkit
    X, T, params = xor_arrays()
    g = dk.grad(_batch_loss(dk.sigmoid, dk.sum, X, T), argnums=(0, 1, 2, 3))

    def run():
        return [p - LR * d for p, d in zip(params, g(*params))]

    return run


def build_hand(ns, size):
    X, T, (W1, b1, W2, b2) = xor_arrays()

    def s(z):
        return 1 / (1 + np.exp(-z))

    def run():
        h = s(X @ W1 + b1)
        o = s(h @ W2 + b2)
        do = 2 * (o - T) * o * (1 - o)
        dh = (do @ W2.T) * h * (1 - h)
        grads = (X.T @ dh, dh.sum(0), h.T @ do, do.sum(0))
        return [p - LR * d for p, d in zip((W1, b1, W2, b2), grads)]

    return run


def build_autograd(ns, size):
    X, T, params = xor_arrays()
    loss = _batch_loss(sigmoid_from(ns.numpy.exp), ns.numpy.sum, X, T)
    g = ns.autograd.grad(loss, argnum=(0, 1, 2, 3))

    def run():
        return [p - LR * d for p, d in zip(params, g(*params))]

    return run


def build_torch(ns, size):
    torch = ns.torch
    X, T, params = xor_arrays()
    X, T = torch.from_numpy(X), torch.from_numpy(T)
    loss = _batch_loss(torch.sigmoid, torch.sum, X, T)

    def run():
        leaves = [torch.from_numpy(p).requires_grad_(True) for p in params]
        grads = torch.autograd.grad(loss(*leaves), leaves)
        with torch.no_grad():
            return [p - LR * d for p, d in zip(leaves, grads)]

    return run


def build_jax(ns, size, jit=False):
    jnp = ns.numpy
    X, T, params = xor_arrays()
    loss = _batch_loss(ns.nn.sigmoid, jnp.sum, jnp.asarray(X), jnp.asarray(T))
    g = ns.jax.grad(loss, argnums=(0, 1, 2, 3))

    def step(*ps):
        return [p - LR * d for p, d in zip(ps, g(*ps))]

    return jax_run(ns, step, [jnp.asarray(p) for p in params], jit)


def build_mygrad(ns, size):
    mg = ns.mygrad
    import mygrad.nnet

    X, T, params = xor_arrays()
    loss = _batch_loss(mygrad.nnet.sigmoid, mg.sum, X, T)

    def run():
        leaves = [mg.tensor(p) for p in params]
        loss(*leaves).backward()
        return [p.data - LR * p.grad for p in leaves]

    return run


def targets(timing) -> list:
    """Faster than PyTorch eager, autograd and mygrad."""
    return [all_of(NAME, "faster than PyTorch eager, autograd and mygrad",
                   [faster_than(timing, NAME, p, 1.0) for p in ("torch", "autograd", "mygrad")])]


WORKLOAD = Workload(
    NAME, "XOR epoch (2-2-1 sigmoid), 4x2 arrays, one full-batch step",
    {
        "diffkit": build_diffkit, "hand": build_hand, "autograd": build_autograd,
        "torch": build_torch, "jax": build_jax, "jax-jit": jitted(build_jax),
        "mygrad": build_mygrad,
    },
    targets=targets,
    notes=(SIGMOID_NOTE,),
)
