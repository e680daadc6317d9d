"""Timing to a verdict: a workload whose sizes are VerdictCases and whose runs return a
Verdict is timed per call under the case's deadline, and only a correct verdict counts."""

from __future__ import annotations

import gc
import math
import random
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from diffkit.bench.targets import format_seconds
from diffkit.bench.timing import add_ratios, error_line


@dataclass(frozen=True)
class VerdictCase:
    """One case: `function(ops)` is f(*point) written with ops.sigmoid/ops.tanh (diffkit's or
    torch's), `text` the same f in the verify grammar; `targets` maps engine -> seconds (its
    time limits); a call may take `deadline` seconds; an engine past it is not run at the later
    cases of its `family`; `slope` cases are fitted for the cost's growth in the number of
    variables."""

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


class _Overrun(BaseException):
    """A call past its deadline. Not an Exception: compare() reports an Exception inside a
    method as that method's failure and carries on with the next one."""


@contextmanager
def _deadline(seconds):
    """Raise _Overrun in the block once `seconds` of wall time have passed, also out of a wait
    (a subprocess, a sleep). Only in the main thread of a POSIX process (elsewhere: no limit)."""
    main = threading.main_thread()
    if not hasattr(signal, "pthread_kill") or threading.current_thread() is not main:
        yield
        return
    armed = threading.Event()
    armed.set()

    def expire(signum, frame):
        if armed.is_set():
            raise _Overrun

    previous = signal.signal(signal.SIGUSR2, expire)
    # a timer thread, not SIGALRM: compare() keeps its own alarm for the symbolic reference.
    # Once join() returns, a signal it sent has reached the handler: restoring is then safe.
    timer = threading.Timer(seconds, signal.pthread_kill, (main.ident, signal.SIGUSR2))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        try:
            armed.clear()
        finally:
            timer.cancel()
            timer.join()
            signal.signal(signal.SIGUSR2, previous)


def _one_verdict(run, deadline):
    """Call run() once under the deadline. Returns (problem or None, wall seconds or None,
    the Verdict or None)."""
    try:
        with _deadline(deadline):
            start = time.perf_counter()
            verdict = run()
            seconds = time.perf_counter() - start
    except (_Overrun, subprocess.TimeoutExpired):
        return f"no verdict within {deadline:g} s (stopped there)", None, None
    except Exception as error:  # a crash is a result, not the end of the bench
        return f"failed: {error_line(error)}", None, None
    if verdict.problem:
        return f"not counted ({format_seconds(seconds)}): {verdict.problem}", seconds, verdict
    return None, seconds, verdict


def time_verdicts(workload, engines, settings, load, progress=None) -> dict:
    """Per case, each engine's wall time from the call to a correct verdict: `verdict_calls`
    separate calls in a shuffled engine order. A verdict with a problem is reported and not
    timed; an engine past the deadline is stopped there and skipped at the later cases of the
    family. Returns the result: rows as timing.time_calls, plus `cases` and `growth`."""
    cases = workload.quick_sizes if settings.quick else workload.sizes
    results = {"title": workload.title, "size_label": workload.size_label, "rows": [],
               "cases": {c.name: _case_info(c) for c in workload.sizes}}
    given_up = {}  # engine -> (family, why)
    for case in cases:
        if progress:
            progress(f"{workload.name} {case.name}")
        deadline = case.deadline
        if settings.verdict_deadline is not None:
            deadline = min(deadline, settings.verdict_deadline)
        results["cases"][case.name]["deadline_s"] = deadline
        rows, runs = _verdict_runs(workload, case, engines, load, deadline, given_up)
        samples = {name: [] for name in runs}
        by_method = {name: [] for name in runs}
        order = list(runs)
        shuffle = random.Random(0).shuffle  # seeded, as in timing.time_calls
        for _ in range(settings.verdict_calls):
            shuffle(order)
            for name in list(order):
                problem, seconds, verdict = _one_verdict(runs[name], deadline)
                if problem is None:
                    samples[name].append(seconds)
                    by_method[name].append(verdict.seconds)
                    continue
                order.remove(name)
                samples[name] = []  # one wrong or missing verdict voids the engine's times
                rows[name]["status"] = problem
                if problem.startswith("no verdict"):
                    given_up[name] = (case.family, f"skipped: no verdict within {deadline:g} s "
                                                   f"at {case.name}")
        for name, times in samples.items():
            if times:
                rows[name].update(median_s=statistics.median(times), min_s=min(times),
                                  max_s=max(times), repeats=len(times), calls_per_repeat=1)
                rows[name]["method_s"] = {  # each method's median over the calls
                    m: statistics.median(c.get(m, math.nan) for c in by_method[name])
                    for m in by_method[name][0]
                }
        results["rows"] += add_ratios(rows)
        gc.collect()
    results["growth"] = _verdict_growth(results["rows"], workload.sizes)
    return results


def _verdict_runs(workload, case, engines, load, deadline, given_up):
    """Build each engine's run for the case (its set-up under the deadline too). Returns (rows
    by engine, {engine: run})."""
    rows, runs = {}, {}
    for peer in engines:
        build = workload.builders.get(peer.name)
        if build is None:
            continue
        row = rows[peer.name] = {"engine": peer.name, "size": case.name, "status": "ok",
                                 "deadline_s": deadline}
        ns = load(peer)
        family, why = given_up.get(peer.name, (None, ""))
        if isinstance(ns, str):
            row["status"] = ns
        elif family == case.family:
            row["status"] = why
        else:
            try:
                with _deadline(deadline):
                    runs[peer.name] = build(ns, case)
            except (_Overrun, subprocess.TimeoutExpired):
                row["status"] = f"failed: its set-up took over {deadline:g} s"
            except Exception as error:
                row["status"] = f"failed: {error_line(error)}"
    return rows, runs


def _case_info(case):
    return {"description": case.description, "order": case.order,
            "variables": len(case.names), "targets": dict(case.targets),
            "deadline_s": case.deadline, "slope": case.slope}


def _verdict_growth(rows, cases):
    """Log-log slope of each engine's time in the number of variables over the `slope` cases
    (1 = linear), from 2 or more of them."""
    variables = {c.name: len(c.names) for c in cases if c.slope}
    series = {}  # engine, or "engine: method", -> [(variables, seconds)]
    for r in rows:
        if r["size"] not in variables or not r.get("median_s"):
            continue
        n = variables[r["size"]]
        series.setdefault(r["engine"], []).append((n, r["median_s"]))
        if r["engine"] == "diffkit":  # which method the growth comes from
            for method, seconds in r.get("method_s", {}).items():
                series.setdefault(f"diffkit: {method}", []).append((n, seconds))
    growth = {}
    for name, points in series.items():
        points = [(n, t) for n, t in points if t > 0]
        if len(points) >= 2:
            slope = np.polyfit(np.log([p[0] for p in points]), np.log([p[1] for p in points]), 1)
            growth[name] = {"loglog_slope": float(slope[0]),
                            "fit": f"log t vs log variables, {len(points)} of "
                                   f"{len(variables)} sizes ({', '.join(variables)})"}
    return growth


def case_lines(result) -> list:
    """Markdown lines under a verdict table: each case diffkit ran, its description and
    deadline, and dk.compare's seconds by method."""
    lines = []
    timed = {row["size"]: row for row in result["rows"] if row["engine"] == "diffkit"}
    for case, info in result.get("cases", {}).items():
        if case in timed:
            lines.append(f"- {case}: {info['description']}; deadline {info['deadline_s']:g} s")
            methods = timed[case].get("method_s", {})
            if methods:
                lines.append("  (dk.compare by method: " + ", ".join(
                    f"{m} {format_seconds(t)}" for m, t in methods.items()) + ")")
    return lines
