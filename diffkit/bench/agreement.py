"""Judging a peer's answer against diffkit's before its time counts: every number of a result
as arrays, and the first output that differs beyond the workload's tolerance."""

from __future__ import annotations

import numpy as np

from diffkit.tolerance import Tolerance

FLOAT32_RTOL = 2e-3  # float32 answers of different engines sum in different orders


def flatten(result) -> list:
    """Every number in a result (nested tuples/lists of floats, arrays, tensors) as arrays."""
    out = []
    stack = [result]
    while stack:
        item = stack.pop(0)
        if isinstance(item, (list, tuple)):
            stack[:0] = list(item)
            continue
        if hasattr(item, "detach"):  # a torch tensor
            item = item.detach().cpu().numpy()
        elif hasattr(item, "data") and not isinstance(item, np.ndarray) and hasattr(item, "grad"):
            item = item.data  # a micrograd Value or a mygrad Tensor
        out.append(np.asarray(item))
    return out


def dtype_problem(size, values):
    """Why diffkit's answer at a dtype-named size is not in that dtype (float32 must stay
    float32), or None."""
    if size in ("float32", "float64"):
        wrong = {str(v.dtype) for v in values
                 if v.ndim > 0 and v.dtype.kind == "f" and v.dtype != size}
        if wrong:
            return f"dtype {', '.join(sorted(wrong))} in a {size} computation"
    return None


def disagreement(workload, values, reference):
    """Why `values` (flattened) do not agree with diffkit's `reference`, or None: within the
    workload's rtol/atol, or FLOAT32_RTOL when diffkit answered in float32."""
    if len(values) != len(reference):
        return f"{len(values)} outputs, diffkit has {len(reference)}"
    tolerance = Tolerance(rtol=workload.rtol, atol=workload.atol)
    if any(r.dtype == np.float32 for r in reference):
        tolerance = Tolerance(rtol=FLOAT32_RTOL, atol=FLOAT32_RTOL * 1e-3)
    for k, (v, r) in enumerate(zip(values, reference)):
        if np.shape(v) != np.shape(r):
            return f"output {k} has shape {np.shape(v)}, diffkit's {np.shape(r)}"
        # where a result overflows (a chaotic map's derivative), inf and nan both say "overflowed"
        overflowed = ~np.isfinite(np.asarray(v, dtype=complex)) & ~np.isfinite(
            np.asarray(r, dtype=complex))
        v, r = np.where(overflowed, 0.0, v), np.where(overflowed, 0.0, r)
        excess = tolerance.excess(v, r)
        if excess > 1:
            return f"output {k} differs from diffkit's by {excess:.3g}x the tolerance"
    return None
