"""Timing calls: each engine's run built, checked against diffkit's answer, then timed in
batches with the engines in a shuffled order; an engine too slow or failing stops growing."""

from __future__ import annotations

import gc
import random
import statistics
import time

from diffkit.bench.agreement import disagreement, dtype_problem, flatten


def time_calls(workload, engines, settings, load, progress=None) -> dict:
    """The workload's result: its title, size label and one row per engine and size (status,
    median/min/max seconds, ratio to diffkit). `load(peer)` gives the engine's modules, or a
    string saying why there are none."""
    sizes = workload.quick_sizes if settings.quick else workload.sizes
    stopped = {}  # engine -> why it is not run at larger sizes
    last = {}  # engine -> (size, seconds of its slowest call there: build, compile, or run)
    results = {"title": workload.title, "size_label": workload.size_label, "rows": []}
    for size in sizes:
        if progress:
            progress(f"{workload.name} {workload.size_label}={size}" if size else workload.name)
        _predict(workload, size, last, settings, stopped)
        rows, runs = _prepare(workload, size, engines, load, stopped)
        _measure(runs, rows, settings, stopped)
        for name, row in rows.items():
            if "first_call_s" in row:
                last[name] = (size, max(row["first_call_s"], runs.get(name, (None, 0.0))[1]))
        results["rows"] += add_ratios(rows)
    return results


def add_ratios(rows) -> list:
    """The rows (engine -> row at one size), each timed one given its time / diffkit's."""
    base = rows.get("diffkit", {}).get("median_s")
    for row in rows.values():
        if base and row.get("median_s") is not None:
            row["ratio"] = row["median_s"] / base
    return list(rows.values())


def error_line(error) -> str:
    """The error's type and the first line of its message (at most 120 characters)."""
    message = str(error).splitlines()[0][:120] if str(error) else ""
    return f"{type(error).__name__}: {message}"


def _predict(workload, size, last, settings, stopped):
    """Stop an engine before a size whose first call would take over 10 budgets, extrapolating
    linearly from its last size (compilation and exponential engines grow faster still)."""
    for name, (previous, seconds) in last.items():
        if name in stopped or not isinstance(size, int) or not previous:
            continue
        predicted = seconds * size / previous
        if predicted > 10 * settings.budget:
            stopped[name] = (
                f"skipped: a call at {_at(workload, size)} would take over {predicted:.0f} s"
            )


def _prepare(workload, size, engines, load, stopped):
    """Build each engine's run, call it once (warm-up, compile) and check its result against
    diffkit's. Returns (rows by engine, {engine: (run, seconds of one call)})."""
    rows = {}
    runs = {}
    reference = None
    for peer in engines:
        build = workload.builders.get(peer.name)
        if build is None:
            continue
        row = {"engine": peer.name, "size": size, "status": "ok"}
        rows[peer.name] = row
        ns = load(peer)
        if isinstance(ns, str):
            row["status"] = ns
            continue
        if peer.name in stopped:
            row["status"] = stopped[peer.name]
            continue
        largest, why = workload.max_size.get(peer.name, (None, ""))
        if largest is not None and size > largest:
            row["status"] = why
            continue
        if peer.name != "diffkit" and reference is None:
            row["status"] = "skipped: no diffkit result to check against"
            continue
        try:
            start = time.perf_counter()
            run = build(ns, size)
            result = run()
            row["first_call_s"] = time.perf_counter() - start
            start = time.perf_counter()
            result = run()
            seconds = time.perf_counter() - start
        except RecursionError:
            row["status"] = stopped[peer.name] = f"failed: RecursionError at {_at(workload, size)}"
            continue
        except Exception as error:  # a crash is a result, not the end of the bench
            row["status"] = stopped[peer.name] = (
                f"failed at {_at(workload, size)}: {error_line(error)}"
            )
            continue
        values = flatten(result)
        if peer.name == "diffkit":
            reference = values
            problem = dtype_problem(size, values)
        else:
            problem = disagreement(workload, values, reference)
        if problem:
            row["status"] = f"wrong result: {problem}"
            continue
        runs[peer.name] = (run, seconds)
    return rows, runs


def _at(workload, size):
    return f"{workload.size_label}={size}" if size is not None else workload.name


def _measure(runs, rows, settings, stopped):
    """Time the runs in a shuffled order: each repeat times one batch of every engine, so that
    no engine always runs after the same one (what ran before moves a time by up to 5%)."""
    numbers = {}
    samples = {name: [] for name in runs}
    for name, (_, seconds) in runs.items():
        if seconds > settings.budget:
            stopped[name] = f"skipped: one call took over {settings.budget:g} s at a smaller size"
            samples[name].append(seconds)
        numbers[name] = max(1, int(settings.batch_seconds / max(seconds, 1e-9)))
    order = [name for name in runs if not samples[name]]
    shuffle = random.Random(0).shuffle  # seeded: each engine follows a different one each time
    for _ in range(settings.repeats):
        shuffle(order)
        for name in order:
            run = runs[name][0]
            number = numbers[name]
            start = time.perf_counter()
            for _ in range(number):
                run()
            samples[name].append((time.perf_counter() - start) / number)
    for name, times in samples.items():
        row = rows[name]
        row["median_s"] = statistics.median(times)
        row["min_s"] = min(times)
        row["max_s"] = max(times)
        row["repeats"] = len(times)
        row["calls_per_repeat"] = numbers[name] if len(times) > 1 else 1
    gc.collect()
