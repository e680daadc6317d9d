"""The benchmark's workloads W1-W6, each written once per engine in that engine's own idiom.

A builder `build(ns, size)` gets the engine's loaded modules and returns `run`, a function of no
arguments doing one unit of work (one gradient, one epoch, one step) and returning its result.
W6 times a verdict instead: its sizes are VerdictCases and its runs return a Verdict.
"""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

LR = 0.1


@dataclass(frozen=True)
class Workload:
    """One workload: sizes to time (None: a single size), how close peers must agree;
    `verdict`: each call is timed once to a verdict under its case's deadline (W6)."""

    name: str
    title: str
    builders: dict
    sizes: tuple = (None,)
    quick_sizes: tuple = (None,)
    size_label: str = ""
    rtol: float = 1e-9
    atol: float = 1e-12
    max_size: dict = field(default_factory=dict)  # engine -> (largest size to try, why)
    verdict: bool = False


# ---- W1: the sigmoid neuron f(x, w, b) = 1 / (1 + exp(-(w x + b))) at (1, 0, 0) ----

def _neuron(exp):
    def f(x, w, b):
        return 1 / (1 + exp(-(w * x + b)))

    return f


def _micrograd_exp(Value):
    """e**v as a micrograd node, written the way micrograd writes relu (it ships no exp)."""

    def exp(v):
        out = Value(math.exp(v.data), (v,), "exp")

        def _backward():
            v.grad += out.data * out.grad

        out._backward = _backward
        return out

    return exp


def w1_diffkit(ns, size):
    g = ns.diffkit.grad(_neuron(ns.diffkit.exp), argnums=(0, 1, 2))
    return lambda: g(1.0, 0.0, 0.0)


def w1_compiled(ns, size):
    g = ns.diffkit.compile(_neuron(ns.diffkit.exp), 1.0, 0.0, 0.0, argnums=(0, 1, 2)).grad
    return lambda: g(1.0, 0.0, 0.0)


def w1_hand(ns, size):
    def run():
        x, w, b = 1.0, 0.0, 0.0
        s = 1 / (1 + math.exp(-(w * x + b)))
        d = s * (1 - s)
        return d * w, d * x, d

    return run


def w1_article(ns, size):
    a = ns.article
    f = _neuron(a.exp)

    def run():
        x, w, b = a.Variable(1.0), a.Variable(0.0), a.Variable(0.0)
        grads = a.gradients(f(x, w, b))
        return grads[x], grads[w], grads[b]

    return run


def w1_micrograd(ns, size):
    Value = ns.engine.Value
    f = _neuron(_micrograd_exp(Value))

    def run():
        x, w, b = Value(1.0), Value(0.0), Value(0.0)
        f(x, w, b).backward()
        return x.grad, w.grad, b.grad

    return run


def w1_autograd(ns, size):
    g = ns.autograd.grad(_neuron(ns.numpy.exp), argnum=(0, 1, 2))
    return lambda: g(1.0, 0.0, 0.0)


def w1_torch(ns, size):
    torch = ns.torch
    f = _neuron(torch.exp)

    def run():
        x, w, b = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (1.0, 0, 0))
        return torch.autograd.grad(f(x, w, b), (x, w, b))

    return run


def _jax_run(ns, fn, args, jit):
    """A run calling fn(*args), jitted if asked, that waits for JAX's asynchronous result."""
    fn = ns.jax.jit(fn) if jit else fn
    return lambda: ns.jax.block_until_ready(fn(*args))


def w1_jax(ns, size, jit=False):
    g = ns.jax.grad(_neuron(ns.numpy.exp), argnums=(0, 1, 2))
    return _jax_run(ns, g, (1.0, 0.0, 0.0), jit)


def w1_mygrad(ns, size):
    mg = ns.mygrad
    f = _neuron(mg.exp)

    def run():
        x, w, b = mg.tensor(1.0), mg.tensor(0.0), mg.tensor(0.0)
        f(x, w, b).backward()
        return x.grad, w.grad, b.grad

    return run


# ---- W2: one XOR epoch, 2-2-1 sigmoid network, squared error, learning rate 0.1 ----

XOR = ((0.0, 0.0, 0.0), (0.0, 1.0, 1.0), (1.0, 0.0, 1.0), (1.0, 1.0, 0.0))
XOR_PARAMS = tuple(float(v) for v in np.random.default_rng(0).normal(size=9))


def _xor_loss(sigmoid):
    """Squared error of one sample; parameters w11 w12 w21 w22 b1 b2 v1 v2 c, then x1 x2 t."""

    def loss(w11, w12, w21, w22, b1, b2, v1, v2, c, x1, x2, t):
        h1 = sigmoid(w11 * x1 + w12 * x2 + b1)
        h2 = sigmoid(w21 * x1 + w22 * x2 + b2)
        d = sigmoid(v1 * h1 + v2 * h2 + c) - t
        return d * d

    return loss


def _sigmoid_from(exp):
    return lambda z: 1 / (1 + exp(-z))


def _per_sample_sgd(g):
    """One XOR epoch, one gradient call g(*params, x1, x2, t) per sample, as the article."""

    def run():
        p = XOR_PARAMS
        for x1, x2, t in XOR:
            grads = g(*p, x1, x2, t)
            p = [v - LR * d for v, d in zip(p, grads)]
        return p

    return run


def w2s_diffkit(ns, size):
    return _per_sample_sgd(ns.diffkit.grad(_xor_loss(ns.diffkit.sigmoid), argnums=tuple(range(9))))


def w2s_compiled(ns, size):
    loss = _xor_loss(ns.diffkit.sigmoid)
    return _per_sample_sgd(
        ns.diffkit.compile(loss, *XOR_PARAMS, *XOR[0], argnums=tuple(range(9))).grad
    )


def w2s_hand(ns, size):
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


def w2s_article(ns, size):
    a = ns.article
    loss = _xor_loss(_sigmoid_from(a.exp))

    def run():
        p = XOR_PARAMS
        for x1, x2, t in XOR:
            vs = [a.Variable(v) for v in p]
            grads = a.gradients(loss(*vs, x1, x2, t))
            p = [v.value - LR * grads[v] for v in vs]
        return p

    return run


def w2s_micrograd(ns, size):
    Value = ns.engine.Value
    loss = _xor_loss(_sigmoid_from(_micrograd_exp(Value)))

    def run():
        p = XOR_PARAMS
        for x1, x2, t in XOR:
            vs = [Value(v) for v in p]
            loss(*vs, x1, x2, t).backward()
            p = [v.data - LR * v.grad for v in vs]
        return p

    return run


def w2s_autograd(ns, size):
    loss = _xor_loss(_sigmoid_from(ns.numpy.exp))
    return _per_sample_sgd(ns.autograd.grad(loss, argnum=tuple(range(9))))


def w2s_jax(ns, size, jit=False):
    g = ns.jax.grad(_xor_loss(ns.nn.sigmoid), argnums=tuple(range(9)))
    if jit:
        g = ns.jax.jit(g)

    epoch = _per_sample_sgd(g)
    return lambda: ns.jax.block_until_ready(epoch())


def _xor_arrays(dtype=np.float64):
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


def _xor_batch_loss(sigmoid, total, X, T):
    def loss(W1, b1, W2, b2):
        d = sigmoid(sigmoid(X @ W1 + b1) @ W2 + b2) - T
        return total(d * d)

    return loss


def w2b_diffkit(ns, size):
    dk = ns.diffkit
    X, T, params = _xor_arrays()
    g = dk.grad(_xor_batch_loss(dk.sigmoid, dk.sum, X, T), argnums=(0, 1, 2, 3))

    def run():
        return [p - LR * d for p, d in zip(params, g(*params))]

    return run


def w2b_hand(ns, size):
    X, T, (W1, b1, W2, b2) = _xor_arrays()

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


def w2b_autograd(ns, size):
    X, T, params = _xor_arrays()
    loss = _xor_batch_loss(_sigmoid_from(ns.numpy.exp), ns.numpy.sum, X, T)
    g = ns.autograd.grad(loss, argnum=(0, 1, 2, 3))

    def run():
        return [p - LR * d for p, d in zip(params, g(*params))]

    return run


def w2b_torch(ns, size):
    torch = ns.torch
    X, T, params = _xor_arrays()
    X, T = torch.from_numpy(X), torch.from_numpy(T)
    loss = _xor_batch_loss(torch.sigmoid, torch.sum, X, T)

    def run():
        leaves = [torch.from_numpy(p).requires_grad_(True) for p in params]
        grads = torch.autograd.grad(loss(*leaves), leaves)
        with torch.no_grad():
            return [p - LR * d for p, d in zip(leaves, grads)]

    return run


def w2b_jax(ns, size, jit=False):
    jnp = ns.numpy
    X, T, params = _xor_arrays()
    loss = _xor_batch_loss(ns.nn.sigmoid, jnp.sum, jnp.asarray(X), jnp.asarray(T))
    g = ns.jax.grad(loss, argnums=(0, 1, 2, 3))

    def step(*ps):
        return [p - LR * d for p, d in zip(ps, g(*ps))]

    return _jax_run(ns, step, [jnp.asarray(p) for p in params], jit)


def w2b_mygrad(ns, size):
    mg = ns.mygrad
    X, T, params = _xor_arrays()
    loss = _xor_batch_loss(_mygrad_sigmoid(mg), mg.sum, X, T)

    def run():
        leaves = [mg.tensor(p) for p in params]
        loss(*leaves).backward()
        return [p.data - LR * p.grad for p in leaves]

    return run


def _mygrad_sigmoid(mg):
    import mygrad.nnet

    return mygrad.nnet.sigmoid


# ---- W3: the single-unit sigmoid chain y_i = s(w_i y_(i-1)), C = (3 - y_D)^2 ----

def _chain_weights(depth):
    """Fixed weights w_1 ... w_D (Python floats), the same for every engine."""
    return [float(w) for w in np.random.default_rng(1).uniform(0.5, 1.5, size=depth)]


CHAIN_X = 0.5


def _chain_cost(sigmoid, ws):
    def cost(x):
        y = x
        for w in ws:
            y = sigmoid(w * y)
        d = 3.0 - y
        return d * d

    return cost


def w3_diffkit(ns, size):
    vg = ns.diffkit.value_and_grad(_chain_cost(ns.diffkit.sigmoid, _chain_weights(size)))
    return lambda: vg(CHAIN_X)


def w3_compiled(ns, size):
    cost = _chain_cost(ns.diffkit.sigmoid, _chain_weights(size))
    vg = ns.diffkit.compile(cost, CHAIN_X).value_and_grad
    return lambda: vg(CHAIN_X)


def w3_hand(ns, size):
    ws = _chain_weights(size)

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


def w3_article(ns, size):
    a = ns.article
    cost = _chain_cost(_sigmoid_from(a.exp), _chain_weights(size))

    def run():
        x = a.Variable(CHAIN_X)
        out = cost(x)
        return out.value, a.gradients(out)[x]

    return run


def w3_micrograd(ns, size):
    Value = ns.engine.Value
    cost = _chain_cost(_sigmoid_from(_micrograd_exp(Value)), _chain_weights(size))

    def run():
        x = Value(CHAIN_X)
        out = cost(x)
        out.backward()
        return out.data, x.grad

    return run


def w3_autograd(ns, size):
    cost = _chain_cost(_sigmoid_from(ns.numpy.exp), _chain_weights(size))
    vg = ns.autograd.value_and_grad(cost)
    return lambda: vg(CHAIN_X)


def w3_torch(ns, size):
    torch = ns.torch
    cost = _chain_cost(torch.sigmoid, _chain_weights(size))

    def run():
        x = torch.tensor(CHAIN_X, dtype=torch.float64, requires_grad=True)
        out = cost(x)
        (g,) = torch.autograd.grad(out, (x,))
        return out.detach(), g

    return run


def w3_jax(ns, size, jit=False):
    vg = ns.jax.value_and_grad(_chain_cost(ns.nn.sigmoid, _chain_weights(size)))
    return _jax_run(ns, vg, (CHAIN_X,), jit)


# ---- W4: d l_n / dx of the logistic map l_(k+1) = 4 l_k (1 - l_k), l_0 = x ----

LOGISTIC_X = 0.3


def _logistic(n):
    def l_n(x):
        for _ in range(n):
            x = 4 * x * (1 - x)
        return x

    return l_n


def w4_diffkit(ns, size):
    g = ns.diffkit.grad(_logistic(size))
    return lambda: g(LOGISTIC_X)


def w4_compiled(ns, size):
    g = ns.diffkit.compile(_logistic(size), LOGISTIC_X).grad
    return lambda: g(LOGISTIC_X)


def w4_hand(ns, size):
    def run():
        x, d = LOGISTIC_X, 1.0
        for _ in range(size):
            d *= 4 * (1 - 2 * x)
            x = 4 * x * (1 - x)
        return d

    return run


def w4_article(ns, size):
    a = ns.article
    l_n = _logistic(size)

    def run():
        x = a.Variable(LOGISTIC_X)
        return a.gradients(l_n(x))[x]

    return run


def w4_sympy(ns, size):
    sympy = ns.sympy
    x = sympy.Symbol("x")
    l_n = _logistic(size)

    def run():
        return float(sympy.diff(l_n(x), x).subs(x, LOGISTIC_X))

    return run


def sympy_derivative_ops(n):
    """How many operations SymPy's raw (unsimplified) d l_n / dx has."""
    import sympy

    x = sympy.Symbol("x")
    return int(sympy.count_ops(sympy.diff(_logistic(n)(x), x)))


def w4_micrograd(ns, size):
    Value = ns.engine.Value
    l_n = _logistic(size)

    def run():
        x = Value(LOGISTIC_X)
        l_n(x).backward()
        return x.grad

    return run


def w4_autograd(ns, size):
    g = ns.autograd.grad(_logistic(size))
    return lambda: g(LOGISTIC_X)


def w4_torch(ns, size):
    torch = ns.torch
    l_n = _logistic(size)

    def run():
        x = torch.tensor(LOGISTIC_X, dtype=torch.float64, requires_grad=True)
        return torch.autograd.grad(l_n(x), (x,))[0]

    return run


def w4_jax(ns, size, jit=False):
    return _jax_run(ns, ns.jax.grad(_logistic(size)), (LOGISTIC_X,), jit)


# ---- W5: one training step of an MLP 784-256-256-10, tanh, softmax cross-entropy ----

MLP_SIZES = (784, 256, 256, 10)
BATCH = 512
MLP_LR = 0.01


def _mlp_data(dtype):
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


def _diffkit_mlp(dk, size):
    """(loss, params) of the W5 MLP written with diffkit's ops."""
    X, Y, params = _mlp_data(size)
    loss = _mlp_loss(
        dk.tanh,
        lambda z: dk.logsumexp(z, axis=1),
        lambda z: dk.sum(z, axis=1),
        dk.mean,
        X,
        Y,
    )
    return loss, params


def w5_diffkit(ns, size):
    dk = ns.diffkit
    loss, params = _diffkit_mlp(dk, size)
    vg = dk.value_and_grad(loss, argnums=tuple(range(6)))

    def run():
        value, grads = vg(*params)
        return value, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


def w5_diffkit_forward(ns, size):
    """The same loss evaluated on plain arrays (no tracing): the denominator of grad/forward."""
    loss, params = _diffkit_mlp(ns.diffkit, size)
    return lambda: loss(*params)


def _mlp_forward_np(X, Y, params):
    W1, b1, W2, b2, W3, b3 = params
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    m = z.max(axis=1, keepdims=True)
    e = np.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    value = np.mean(m[:, 0] + np.log(s[:, 0]) - (z * Y).sum(axis=1))
    return value, (h1, h2, e / s)


def w5_hand(ns, size):
    X, Y, params = _mlp_data(size)
    W1, b1, W2, b2, W3, b3 = params

    def run():
        value, (h1, h2, softmax) = _mlp_forward_np(X, Y, params)
        dz = (softmax - Y) / len(X)
        dh2 = (dz @ W3.T) * (1 - h2 * h2)
        dh1 = (dh2 @ W2.T) * (1 - h1 * h1)
        grads = (X.T @ dh1, dh1.sum(0), h1.T @ dh2, dh2.sum(0), h2.T @ dz, dz.sum(0))
        return value, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


def w5_hand_forward(ns, size):
    X, Y, params = _mlp_data(size)
    return lambda: _mlp_forward_np(X, Y, params)[0]


def w5_autograd(ns, size):
    anp = ns.numpy
    X, Y, params = _mlp_data(size)

    def logsumexp(z):
        m = anp.max(z, axis=1, keepdims=True)
        return m[:, 0] + anp.log(anp.sum(anp.exp(z - m), axis=1))

    loss = _mlp_loss(anp.tanh, logsumexp, lambda z: anp.sum(z, axis=1), anp.mean, X, Y)
    vg = ns.autograd.value_and_grad(lambda ps: loss(*ps))

    def run():
        value, grads = vg(list(params))
        return value, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


def w5_torch(ns, size):
    torch = ns.torch
    X, Y, params = _mlp_data(size)
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


def w5_jax(ns, size, jit=False):
    jnp = ns.numpy
    X, Y, params = _mlp_data(size)
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

    return _jax_run(ns, step, [jnp.asarray(p) for p in params], jit)


def w5_mygrad(ns, size):
    mg = ns.mygrad
    import mygrad.nnet

    X, Y, params = _mlp_data(size)

    def run():
        leaves = [mg.tensor(p) for p in params]
        W1, b1, W2, b2, W3, b3 = leaves
        z = mg.tanh(mg.tanh(X @ W1 + b1) @ W2 + b2) @ W3 + b3
        value = -mg.mean(mg.sum(mygrad.nnet.logsoftmax(z, axis=1) * Y, axis=1))
        value.backward()
        grads = [p.grad for p in leaves]
        return value.data, grads, [p - MLP_LR * d for p, d in zip(params, grads)]

    return run


# ---- W6: time to a verdict: dk.compare in process, `diffkit verify` as a command, gradcheck ----

COUPLING = 0.1  # weight of the smoothness penalty that links neighbouring units in W6


@dataclass(frozen=True)
class VerdictCase:
    """One W6 case: `function(ops)` is f(*point) written with ops.sigmoid/ops.tanh (diffkit's or
    torch's), `text` the same f in the verify grammar; `targets` maps engine -> seconds (the
    issue's); a call may take `deadline` seconds; an engine past it is not run at the later cases
    of its `family`; `slope` cases are fitted for the cost's growth in the number of variables."""

    name: str
    description: str
    names: tuple
    point: tuple
    order: int
    function: Callable
    text: str
    deadline: float
    family: str
    targets: dict = field(default_factory=dict)
    slope: bool = False


@dataclass(frozen=True)
class Verdict:
    """What one call decided: `problem` is None for `agree`, reached against `reference`;
    `seconds` maps each method to the seconds it took, when the engine says."""

    reference: str
    problem: str | None = None
    seconds: dict = field(default_factory=dict)


def chain_case(unit, depth, order, deadline, targets=None):
    """The VerdictCase of s_0 = x, s_k = unit(w_k s_(k-1)) for k = 1..depth, f = s_depth, in x
    and every w_k at a seeded point (x in [-1, 1], w_k in [0.5, 1.5])."""
    rng = np.random.default_rng(6)
    point = (float(rng.uniform(-1, 1)),) + tuple(float(w) for w in rng.uniform(0.5, 1.5, depth))
    names = ("x",) + tuple(f"w{k}" for k in range(1, depth + 1))
    text = "x"
    for k in range(1, depth + 1):
        text = f"{unit}(w{k}*{text})"

    def function(ops):
        activation = getattr(ops, unit)

        def f(x, *ws):
            s = x
            for w in ws:
                s = activation(w * s)
            return s

        return f

    return VerdictCase(
        f"{unit}{depth}/o{order}",
        f"{depth}-deep chain s_k = {unit}(w_k s_(k-1)), s_0 = x, f = s_{depth}: {depth + 1} "
        f"variables (x and the weights), order {order}",
        names, point, order, function, text, deadline, unit, dict(targets or {}),
    )


def units_case(n, order, deadline, targets=None, slope=False):
    """The VerdictCase of f(x_1..x_n) = sum_i sigmoid(c_i x_i) + COUPLING sum_i (x_(i+1) -
    x_i)^2: sigmoid units with a smoothness penalty linking neighbours (c_i fixed, seeded, 3
    decimals; x_i seeded in [-2, 2])."""
    rng = np.random.default_rng(7)
    weights = tuple(round(float(c), 3) for c in rng.uniform(0.5, 1.5, n))
    point = tuple(float(x) for x in rng.uniform(-2, 2, n))
    names = tuple(f"x{i}" for i in range(1, n + 1))
    units = [f"sigmoid({c!r}*{x})" for c, x in zip(weights, names)]
    links = [f"{COUPLING!r}*({b} - {a})**2" for a, b in zip(names, names[1:])]
    text = " + ".join(units + links)

    def function(ops):
        def f(*xs):
            total = ops.sigmoid(weights[0] * xs[0])
            for c, x in zip(weights[1:], xs[1:]):
                total = total + ops.sigmoid(c * x)
            for a, b in zip(xs, xs[1:]):
                total = total + COUPLING * (b - a) ** 2
            return total

        return f

    return VerdictCase(
        f"units{n}/o{order}",
        f"sum_i sigmoid(c_i x_i) + {COUPLING!r} sum_i (x_(i+1) - x_i)^2 over {n} variables "
        f"x_i, order {order}",
        names, point, order, function, text, deadline, f"units/o{order}", dict(targets or {}),
        slope,
    )


def comparison_problem(agree, reference, blamed, notes):
    """Why a diffkit verdict does not count (None: it is `agree`, with the symbolic reference)."""
    if not agree:
        return f"verdict disagree (methods off the reference: {', '.join(blamed) or 'none'})"
    if reference != "symbolic":
        return f"verdict without the symbolic reference: {notes[0] if notes else reference}"
    return None


def _first_use(dk):
    """A small compare, so that imports and first-use set-up are not charged to the first case."""
    dk.compare(lambda x, w: dk.tanh(dk.sigmoid(w * x)), 0.3, 0.7, order=2)


def w6_diffkit(ns, case):
    from sympy.core.cache import clear_cache

    dk = ns.diffkit
    f = case.function(dk)
    _first_use(dk)

    def run():
        # each call starts as a process's first compare would: SymPy's cache would otherwise
        # hand the second call the derivatives of the first (3 to 10x faster on small chains)
        clear_cache()
        c = dk.compare(f, *case.point, names=case.names, order=case.order)
        blamed = [m.name for m in c.methods.values() if m.applicable and not m.agree]
        return Verdict(c.reference, comparison_problem(c.agree, c.reference, blamed, c.notes),
                       {m.name: m.seconds for m in c.methods.values()})

    return run


def verify_argv(command, case):
    """`diffkit verify TEXT --at NAME=VALUE,... --json [--order 2]` for the case."""
    at = ",".join(f"{name}={value!r}" for name, value in zip(case.names, case.point))
    order = ["--order", "2"] if case.order == 2 else []
    return [command, "verify", case.text, "--at", at, "--json", *order]


def w6_cli(ns, case):
    argv = verify_argv(ns.command, case)

    def run():
        done = subprocess.run(argv, capture_output=True, text=True, timeout=case.deadline)
        if done.returncode not in (0, 1):
            lines = done.stderr.strip().splitlines() or ["(nothing on stderr)"]
            return Verdict("", f"exit status {done.returncode}: {lines[-1][:200]}")
        out = json.loads(done.stdout)
        if (done.returncode == 0) != out["agree"]:
            return Verdict(out["reference"], f"exit status {done.returncode} with agree = "
                                             f"{out['agree']}")
        blamed = [name for name, m in out["methods"].items() if m["applicable"] and not m["agree"]]
        return Verdict(out["reference"], comparison_problem(out["agree"], out["reference"],
                                                            blamed, out["notes"]),
                       out.get("timing", {}))

    return run


def w6_gradcheck(ns, case):
    torch = ns.torch
    f = case.function(torch)
    seed = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradgradcheck(torch.sigmoid, (seed,))  # first-use set-up, as _first_use

    def run():
        inputs = tuple(torch.tensor(v, dtype=torch.float64, requires_grad=True)
                       for v in case.point)
        ok = torch.autograd.gradcheck(f, inputs, raise_exception=False)
        if ok and case.order == 2:
            ok = torch.autograd.gradgradcheck(f, inputs, raise_exception=False)
        return Verdict("finite differences", None if ok else f"order {case.order} check failed")

    return run


W6_BUILDERS = {"diffkit": w6_diffkit, "diffkit-cli": w6_cli, "torch-gradcheck": w6_gradcheck}
W6_CASES = (
    chain_case("sigmoid", 10, 1, deadline=6.0),
    chain_case("sigmoid", 10, 2, deadline=6.0, targets={"diffkit": 1.0, "diffkit-cli": 3.0}),
    chain_case("tanh", 30, 1, deadline=6.0, targets={"diffkit": 3.0}),
    chain_case("tanh", 100, 1, deadline=20.0, targets={"diffkit": 10.0}),
    units_case(100, 1, deadline=10.0, slope=True),
    units_case(200, 1, deadline=10.0, slope=True),
    units_case(300, 1, deadline=10.0, targets={"diffkit": 5.0}),
    units_case(400, 1, deadline=15.0, slope=True),
    units_case(80, 2, deadline=20.0, targets={"diffkit": 10.0}),
)


def _jit(build):
    return lambda ns, size: build(ns, size, jit=True)


WORKLOADS = [
    Workload(
        "W1", "sigmoid neuron: gradient of 1/(1+exp(-(w*x+b))) at (1, 0, 0), per call",
        {
            "diffkit": w1_diffkit, "diffkit-compile": w1_compiled, "hand": w1_hand,
            "article": w1_article,
            "micrograd": w1_micrograd, "autograd": w1_autograd, "torch": w1_torch,
            "jax": w1_jax, "jax-jit": _jit(w1_jax), "mygrad": w1_mygrad,
        },
    ),
    Workload(
        "W2-scalar", "XOR epoch (2-2-1 sigmoid, 4 samples, SGD per sample), one graph per sample",
        {
            "diffkit": w2s_diffkit, "diffkit-compile": w2s_compiled, "hand": w2s_hand,
            "article": w2s_article,
            "micrograd": w2s_micrograd, "autograd": w2s_autograd, "jax": w2s_jax,
            "jax-jit": _jit(w2s_jax),
        },
    ),
    Workload(
        "W2-batched", "XOR epoch (2-2-1 sigmoid), 4x2 arrays, one full-batch step",
        {
            "diffkit": w2b_diffkit, "hand": w2b_hand, "autograd": w2b_autograd,
            "torch": w2b_torch, "jax": w2b_jax, "jax-jit": _jit(w2b_jax), "mygrad": w2b_mygrad,
        },
    ),
    Workload(
        "W3", "sigmoid chain y_i = s(w_i y_(i-1)), C = (3 - y_D)^2: value and dC/dy_0",
        {
            "diffkit": w3_diffkit, "diffkit-compile": w3_compiled, "hand": w3_hand,
            "article": w3_article,
            "micrograd": w3_micrograd, "autograd": w3_autograd, "torch": w3_torch,
            "jax": w3_jax, "jax-jit": _jit(w3_jax),
        },
        sizes=(10, 100, 1000, 10**4, 10**5, 10**6),
        quick_sizes=(10, 100, 1000, 10**4),
        size_label="D",
        max_size={
            "diffkit-compile": (10**4, "skipped: compiling writes ~10 lines per link (1.7 s at "
                                       "D = 10^4); compile is for small graphs called often"),
        },
    ),
    Workload(
        "W4", "logistic map l_(k+1) = 4 l_k (1 - l_k): d l_n / dx at x = 0.3",
        {
            "diffkit": w4_diffkit, "diffkit-compile": w4_compiled, "hand": w4_hand,
            "article": w4_article, "sympy": w4_sympy,
            "micrograd": w4_micrograd, "autograd": w4_autograd, "torch": w4_torch,
            "jax": w4_jax, "jax-jit": _jit(w4_jax),
        },
        sizes=(2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 100, 1000, 10**4),
        quick_sizes=(2, 4, 6, 8, 10, 12, 14, 16, 100, 1000),
        size_label="n",
        rtol=1e-6,
        max_size={
            "article": (30, "skipped: 2^n paths (the time doubles per step)"),
            "sympy": (30, "skipped: the derivative grows ~2.3x per step"),
        },
    ),
    Workload(
        "W5", "MLP 784-256-256-10 tanh, softmax cross-entropy, batch 512: one SGD step",
        {
            "diffkit": w5_diffkit, "hand": w5_hand, "autograd": w5_autograd,
            "torch": w5_torch, "jax": w5_jax, "jax-jit": _jit(w5_jax), "mygrad": w5_mygrad,
        },
        sizes=("float64", "float32"),
        quick_sizes=("float64", "float32"),
        size_label="dtype",
        rtol=1e-6,
        atol=1e-9,
    ),
    Workload(
        "W5-forward", "the W5 loss alone, no gradient (denominator of gradient/forward)",
        {"diffkit": w5_diffkit_forward, "hand": w5_hand_forward},
        sizes=("float64", "float32"),
        quick_sizes=("float64", "float32"),
        size_label="dtype",
        rtol=1e-6,
        atol=1e-9,
    ),
    Workload(
        "W6", "time to a verdict: every method and the symbolic reference, agree checked",
        W6_BUILDERS,
        sizes=W6_CASES,
        quick_sizes=(W6_CASES[0], W6_CASES[2]),
        size_label="case",
        verdict=True,
    ),
]

BY_NAME = {w.name: w for w in WORKLOADS}
