"""W5-forward, the W5 loss alone with no gradient: the denominator of W5's goal that a
gradient step costs at most 3 forward passes."""

from __future__ import annotations

import diffkit.bench.workloads.w5_mlp as w5_mlp
from diffkit.bench.protocol import Target, Workload
from diffkit.bench.targets import median

NAME = "W5-forward"


def build_diffkit(ns, size):
    """The loss evaluated by diffkit's ops on plain arrays (no tracing)."""
    loss, params = w5_mlp.diffkit_mlp(ns.diffkit, size)
    return lambda: loss(*params)


def build_hand(ns, size):
    X, Y, params = w5_mlp.mlp_data(size)
    return lambda: w5_mlp.forward_numpy(X, Y, params)[0]


def targets(timing) -> list:
    """Per dtype, when W5 ran too: diffkit's W5 step / its forward pass <= 3."""
    out = []
    for dtype in w5_mlp.DTYPES:
        step = median(timing, w5_mlp.NAME, "diffkit", dtype)
        forward = median(timing, NAME, "diffkit", dtype)
        if step is not None and forward is not None:
            ratio = step / forward
            out.append(Target(w5_mlp.NAME, f"{dtype}: gradient step / forward <= 3",
                              ratio <= 3, f"{ratio:.2f}"))
    return out


WORKLOAD = Workload(
    NAME, "the W5 loss alone, no gradient (denominator of gradient/forward)",
    {"diffkit": build_diffkit, "hand": build_hand},
    sizes=w5_mlp.DTYPES,
    quick_sizes=w5_mlp.DTYPES,
    size_label="dtype",
    rtol=1e-6,
    atol=1e-9,
    targets=targets,
)
