"""The contract of a bench workload: `Workload` (what each engine runs, at which sizes, how its
results are judged) and `Target` (one of its performance goals, checked after the run)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Target:
    """One goal of a workload: `holds` is True, False, or None (not measured); `detail` says what
    was measured. Reported under `workload`, the name it is about."""

    workload: str
    target: str
    holds: bool | None
    detail: str


def no_targets(timing) -> list:
    """The targets of a workload without goals: an empty list."""
    return []


@dataclass(frozen=True)
class Workload:
    """One workload of `diffkit bench`; the registry (workloads/__init__.py) lists them.

    `builders` maps an engine's name (peers.py) to `build(ns, size)`: given the engine's loaded
    modules, it returns `run`, a function of no arguments doing one unit of work and returning
    its result, which must agree with diffkit's within `rtol`/`atol`. `sizes` are timed, or
    `quick_sizes` under --quick ((None,): one size); `size_label` names a size in the tables;
    `max_size` maps an engine to (the largest size to try, why).
    `targets(timing)` returns this workload's Targets once it has run, given the result of every
    workload run (name -> result).
    `analyse(rows, quick)`, if set, returns more entries for the result (a growth fit);
    `summary(result)`, if set, returns the Markdown lines printed under the table;
    `measure`, if set, times the workload instead of timing.time_calls (same signature);
    `notes` are printed at the end of a report the workload is part of.
    """

    name: str
    title: str
    builders: dict
    sizes: tuple = (None,)
    quick_sizes: tuple = (None,)
    size_label: str = ""
    rtol: float = 1e-9
    atol: float = 1e-12
    max_size: dict = field(default_factory=dict)
    targets: Callable = no_targets
    analyse: Callable | None = None
    summary: Callable | None = None
    measure: Callable | None = None
    notes: tuple = ()
