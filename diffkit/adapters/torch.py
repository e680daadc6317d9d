"""PyTorch (eager, CPU, float64) under `diffkit conformance`; importing this module needs torch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

NAME = f"torch {torch.__version__}"
PARAMS = {"leaky_relu": {"alpha": 0.01}, "elu": {"alpha": 1.0}}
OPS = {
    "add": torch.add, "subtract": torch.sub, "multiply": torch.mul, "divide": torch.div,
    "negative": torch.neg, "power": torch.pow, "exp": torch.exp, "log": torch.log,
    "sqrt": torch.sqrt, "sin": torch.sin, "cos": torch.cos, "tan": torch.tan,
    "sinh": torch.sinh, "cosh": torch.cosh, "tanh": torch.tanh, "abs": torch.abs,
    "maximum": torch.maximum, "sigmoid": torch.sigmoid, "relu": torch.relu,
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01), "softplus": F.softplus,
    "elu": lambda x: F.elu(x, 1.0), "silu": F.silu,
}


def variable(x):
    """A float64 scalar tensor that requires grad."""
    return torch.tensor(float(x), dtype=torch.float64, requires_grad=True)


def value(v):
    """The tensor's value as a float."""
    return float(v.detach())


def gradients(output, inputs):
    """torch.autograd.grad of output for each input (0 for an input it does not use); the graph
    is kept, so that a second call gives the same answer."""
    found = torch.autograd.grad(output, inputs, retain_graph=True, allow_unused=True)
    return [0.0 if g is None else float(g) for g in found]
