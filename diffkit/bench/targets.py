"""Checking a workload's goals against the measured medians: one engine's time against a
peer's, several such checks as one Target, and seconds written for people."""

from __future__ import annotations

from diffkit.bench.protocol import Target


def format_seconds(seconds) -> str:
    """`seconds` in s, ms or us with two decimals; "-" for None."""
    if seconds is None:
        return "-"
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.2f} us"


def median(timing, workload, engine, size=None):
    """The median seconds of `engine` on `workload` at `size`, or None when not measured."""
    for row in timing.get(workload, {}).get("rows", []):
        if row["engine"] == engine and row["size"] == size:
            return row.get("median_s")
    return None


def faster_than(timing, workload, peer, factor, size=None, strict=True, engine="diffkit"):
    """(holds, detail): does `engine` take at most peer's time / factor (strictly less, unless
    `strict` is False)? holds is None when either was not measured."""
    mine = median(timing, workload, engine, size)
    theirs = median(timing, workload, peer, size)
    if mine is None or theirs is None:
        return None, f"{peer}: not measured"
    holds = mine * factor < theirs if strict else mine * factor <= theirs
    ratio = (f"{theirs / mine:.2f}x faster" if theirs >= mine
             else f"{mine / theirs:.2f}x slower")
    return holds, (f"{engine} {format_seconds(mine)} vs {peer} {format_seconds(theirs)} "
                   f"({engine} {ratio})")


def all_of(workload, text, checks) -> Target:
    """The Target that holds when every measured check of `checks` ((holds, detail) pairs)
    holds; None when none was measured."""
    measured = [c for c in checks if c[0] is not None]
    holds = None if not measured else all(c[0] for c in measured)
    return Target(workload, text, holds, "; ".join(c[1] for c in checks))


def compile_stretch(timing, workload) -> list:
    """diffkit.compile's goals on a workload it runs: within 2x of JAX jit, and >= 2x faster than
    the article's engine."""
    return [
        all_of(workload, "diffkit.compile: within 2x of JAX jit",
               [faster_than(timing, workload, "jax-jit", 0.5, strict=False,
                            engine="diffkit-compile")]),
        all_of(workload, "diffkit.compile: >= 2x faster than the article's engine",
               [faster_than(timing, workload, "article", 2.0, strict=False,
                            engine="diffkit-compile")]),
    ]
