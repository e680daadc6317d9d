"""W5, one SGD step of an MLP 784-256-256-10 (tanh, softmax cross-entropy, batch 512) in
float64 and float32: the network and data W5-forward shares, and the goals against the peers."""

from __future__ import annotations

import math

import numpy as np

from diffkit.bench.idioms import jax_run, jitted
from diffkit.bench.protocol import Workload
from diffkit.bench.targets import all_of, faster_than

NAME = "W5"
MLP_SIZES = (784, 256, 256, 10)
BATCH = 512
MLP_LR = 0.01
DTYPES = ("float64", "float32")


def mlp_data(dtype):
    """Inputs X (512, 784), one-hot labels Y (512, 10), parameters W1 b1 W2 b2 W3 b3."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(BATCH, MLP_SIZES[0])).astype(dtype)
    Y = np.eye(MLP_SIZES[-1], dtype=dtype)[rng.integers(0, MLP_SIZES[-1], size=BATCH)]
    params = []
    for fan_in, fan_out in zip(MLP_SIZES[:-1], MLP_SIZES[1:]):
        params.append((rng.normal(size=(fan_in, fan_out)) / math.sqrt(fan_in)).astype(dtype))
        params.append(np.zeros(fan_out, dtype=dtype))
    return X, Y, tuple(params)


def _mlp_loss(tanh, logsumexp, total, mean, X, Y):
    def loss(W1, b1, W2, b2, W3, b3):
        z = tanh(tanh(X @ W1 + b1) @ W2 + b2) @ W3 + b3
        return mean(logsumexp(z) - total(z * Y))

    return loss


def diffkit_mlp(dk, dtype):
    """(loss, params) of the MLP written with diffkit's ops, in `dtype`."""
    X, Y, params = mlp_data(dtype)
    loss = _mlp_loss(
        dk.tanh,
        lambda z: dk.logsumexp(z, axis=1),
        lambda z: dk.sum(z, axis=1),
        dk.mean,
        X,
        Y,
    )
    return loss, params


def forward_numpy(X, Y, params):
    """(loss, (h1, h2, softmax)) of the MLP in NumPy: the hand-written forward pass."""
    W1, b1, W2, b2, W3, b3 = params
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    value = np.mean(m[:, 0] + np.log(s[:, 0]) - (z * Y).sum(axis=1))
    return value, (h1, h2, e / s)


def build_diffkit(ns, size):
    dk = ns.diffkit
    loss, params = diffkit_mlp(dk, size)
    vg = dk.value_and_grad(loss, argnums=tuple(range(6)))

    def run():
        value, grads = vg(*params)
        return value, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


def build_hand(ns, size):
    X, Y, params = mlp_data(size)
    W1, b1, W2, b2, W3, b3 = params

    def run():
        value, (h1, h2, softmax) = forward_numpy(X, Y, params)
        dz = (softmax - Y) / len(X)
        dh2 = (dz @ W3.T) * (1 - h2 * h2)
        dh1 = (dh2 @ W2.T) * (1 - h1 * h1)
        grads = (X.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0))
        return value, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


def build_autograd(ns, size):
    anp = ns.numpy
    X, Y, params = mlp_data(size)

    def logsumexp(z):
        m = anp.max(z, axis=1, keepdims=True)
        return m[:, 0] + anp.log(anp.sum(anp.exp(z - m), axis=1))

    loss = _mlp_loss(anp.tanh, logsumexp, lambda z: anp.sum(z, axis=1), anp.mean, X, Y)
    vg = ns.autograd.value_and_grad(lambda ps: loss(*ps))

    def run():
        value, grads = vg(list(params))
        return value, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


def build_torch(ns, size):
    torch = ns.torch
    X, Y, params = mlp_data(size)
    loss = _mlp_loss(
        torch.tanh,
        lambda z: torch.logsumexp(z, dim=1),
        lambda z: torch.sum(z, dim=1),
        torch.mean,
        torch.from_numpy(X),
        torch.from_numpy(Y),
    )

    def run():
        leaves = [torch.from_numpy(p).requires_grad_(True) for p in params]
        value = loss(*leaves)
        grads = torch.autograd.grad(value, leaves)
        with torch.no_grad():
            return value.detach(), grads, [p - MLP_LR * d for p, d in zip(leaves, grads)]

    return run


def build_jax(ns, size, jit=False):
    jnp = ns.numpy
    X, Y, params = mlp_data(size)
    loss = _mlp_loss(
        jnp.tanh,
        lambda z: ns.jax.nn.logsumexp(z, axis=1),
        lambda z: jnp.sum(z, axis=1),
        jnp.mean,
        jnp.asarray(X),
        jnp.asarray(Y),
    )
    vg = ns.jax.value_and_grad(loss, argnums=tuple(range(6)))

    def step(*ps):
        value, grads = vg(*ps)
        return value, grads, [p - MLP_LR * d for p, d in zip(ps, grads)]

    return jax_run(ns, step, [jnp.asarray(p) for p in params], jit)


def build_mygrad(ns, size):
    mg = ns.mygrad
    import mygrad.nnet

    X, Y, params = mlp_data(size)

    def run():
        leaves = [mg.tensor(p) for p in params]
        W1, b1, W2, b2, W3, b3 = leaves
        z = mg.tanh(mg.tanh(X @ W1 + b1) @ W2 + b2) @ W3 + b3
        value = -mg.mean(mg.sum(mygrad.nnet.logsoftmax(z, axis=1) * Y, axis=1))
        value.backward()
        grads = [p.grad for p in leaves]
        return value.data, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


def targets(timing) -> list:
    """Per dtype: faster than autograd and PyTorch eager, within 1.1x of JAX jit, never slower
    than the hand-written NumPy step."""
    out = []
    for dtype in DTYPES:
        out += [
            all_of(NAME, f"{dtype}: faster than autograd and PyTorch eager",
                   [faster_than(timing, NAME, p, 1.0, size=dtype) for p in ("autograd", "torch")]),
            all_of(NAME, f"{dtype}: within 1.1x of JAX jit",
                   [faster_than(timing, NAME, "jax-jit", 1 / 1.1, size=dtype, strict=False)]),
            all_of(NAME, f"{dtype}: never slower than the hand-written NumPy step",
                   [faster_than(timing, NAME, "hand", 1.0, size=dtype, strict=False)]),
        ]
    return out


WORKLOAD = Workload(
    NAME, "MLP 784-256-256-10 tanh, softmax cross-entropy, batch 512: one SGD step",
    {
        "diffkit": build_diffkit, "hand": build_hand, "autograd": build_autograd,
        "torch": build_torch, "jax": build_jax, "jax-jit": jitted(build_jax),
        "mygrad": build_mygrad,
    },
    sizes=DTYPES,
    quick_sizes=DTYPES,
    size_label="dtype",
    rtol=1e-6,
    atol=1e-9,
    targets=targets,
)
