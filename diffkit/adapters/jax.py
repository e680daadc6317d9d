"""JAX (CPU, float64) under `diffkit conformance`: its operations on a recorded graph,
differentiated by jax.grad over the replayed graph; importing this module needs jax."""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)  # float64, as every engine checked here computes

import jax.numpy as jnp  # noqa: E402  (after the float64 switch)

from diffkit.adapters.lazy import recorded, replay  # noqa: E402
from diffkit.adapters.lazy import variable as _leaf  # noqa: E402

NAME = f"jax {jax.__version__}"
PARAMS = {"leaky_relu": {"alpha": 0.01}, "elu": {"alpha": 1.0}}
OPS = {name: recorded(fn) for name, fn in {
    "add": jnp.add, "subtract": jnp.subtract, "multiply": jnp.multiply, "divide": jnp.divide,
    "negative": jnp.negative, "power": jnp.power, "exp": jnp.exp, "log": jnp.log,
    "sqrt": jnp.sqrt, "sin": jnp.sin, "cos": jnp.cos, "tan": jnp.tan, "sinh": jnp.sinh,
    "cosh": jnp.cosh, "tanh": jnp.tanh, "abs": jnp.abs, "maximum": jnp.maximum,
    "sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu,
    "leaky_relu": lambda x: jax.nn.leaky_relu(x, 0.01), "softplus": jax.nn.softplus,
    "elu": lambda x: jax.nn.elu(x, 1.0), "silu": jax.nn.silu,
}.items()}


def variable(x):
    """A leaf of the recorded graph holding x as a float64 JAX scalar."""
    return _leaf(jnp.float64(x))


def value(v):
    """The node's value as a float."""
    return float(v.value)


def gradients(output, inputs):
    """jax.grad of the replayed graph with respect to every input."""
    argnums = tuple(range(len(inputs)))
    found = jax.grad(replay(output, inputs), argnums)(*(x.value for x in inputs))
    return [float(g) for g in found]
