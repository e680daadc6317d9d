"""Times every registered workload for every installed engine in one process, and writes
reports/performance.md and reports/performance.json (timings under "timing")."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from diffkit.bench import peers as peer_table
from diffkit.bench import workloads as registry
from diffkit.bench.targets import format_seconds
from diffkit.bench.timing import time_calls
from diffkit.errors import InputError


@dataclass(frozen=True)
class Settings:
    """How hard to time: `repeats` batches per engine, each at least `batch_seconds` long;
    an engine whose single call exceeds `budget` seconds is timed once and not at larger sizes.
    `quick` selects each workload's quick sizes. A workload timed to a verdict makes
    `verdict_calls` calls per case, each stopped at its case's deadline or `verdict_deadline`
    seconds, whichever comes first."""

    repeats: int
    batch_seconds: float
    budget: float
    quick: bool = False
    verdict_calls: int = 1
    verdict_deadline: float | None = None

    @classmethod
    def for_run(cls, quick: bool) -> Settings:
        if quick:
            return cls(repeats=3, batch_seconds=0.01, budget=0.25, quick=True, verdict_calls=1,
                       verdict_deadline=5.0)
        return cls(repeats=7, batch_seconds=0.05, budget=2.0, verdict_calls=3)


def run_bench(args) -> int:
    """`diffkit bench`: time, print the table, write performance.md/.json under args.out.

    args has .quick (bool), .only and .peers (comma-separated names or None), .out (a folder).
    Returns the exit status: 0, or 2 for an unknown workload or peer name, or a list naming none.
    """
    try:
        workloads = select_workloads(args.only)
        engines = peer_table.select(args.peers)
    except ValueError as error:
        print(f"diffkit bench: error: {error}", file=sys.stderr)
        return 2
    command = "diffkit bench" + " ".join(
        [""]
        + (["--quick"] if args.quick else [])
        + ([f"--only {args.only}"] if args.only else [])
        + ([f"--peers {args.peers}"] if args.peers else [])
    )
    report = benchmark(workloads, engines, Settings.for_run(args.quick), progress=_progress)
    report["command"] = command
    report["quick"] = bool(args.quick)
    paths = write_report(report, Path(args.out), workloads)
    print(render_markdown(report, workloads))
    print("wrote " + ", ".join(str(p) for p in paths))
    return 0


def _progress(message):
    print(message, file=sys.stderr, flush=True)


def select_workloads(names):
    """The registered workloads named (comma-separated; None: all). A name also selects the
    workloads whose name it is followed by "-" and more (A selects A-scalar, A-batched). Raises
    InputError for an unknown name or a list that names none."""
    known = ", ".join(w.name for w in registry.WORKLOADS)
    if names is None:
        return list(registry.WORKLOADS)
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise InputError(f"--only names no workload; choose from {known}")
    chosen = []
    for name in wanted:
        matches = [w for w in registry.WORKLOADS if w.name == name or
                   w.name.split("-")[0] == name]
        if not matches:
            raise InputError(f"unknown workload {name}; choose from {known}")
        chosen.extend(m for m in matches if m not in chosen)
    return chosen


# ---- measuring ----

def benchmark(workloads, engines, settings, progress=None) -> dict:
    """Run the workloads for the engines; return the report as a JSON-ready dict."""
    started = time.time()
    load_before = _load_average()
    loaded = {}
    timing = {}
    for workload in workloads:
        measure = workload.measure or time_calls
        result = measure(workload, engines, settings, lambda peer: _load(peer, loaded), progress)
        if workload.analyse is not None:
            result.update(workload.analyse(result["rows"], settings.quick))
        timing[workload.name] = result
    machine = machine_info()
    machine["load_average"] = {"before": load_before, "after": _load_average()}
    report = {
        "machine": machine,
        "versions": versions(engines),
        "settings": {
            "repeats": settings.repeats,
            "batch_seconds": settings.batch_seconds,
            "budget_seconds": settings.budget,
            "verdict_calls": settings.verdict_calls,
            "verdict_deadline_seconds": settings.verdict_deadline,
            "gc": "enabled (what a user's program sees)",
        },
        "timing": timing,
        "seconds": round(time.time() - started, 1),
    }
    report["targets"] = [asdict(t) for w in workloads for t in w.targets(timing)]
    return report


def _load(peer, loaded):
    """The peer's modules, loaded once; an import failure is remembered as a string."""
    if peer.name not in loaded:
        if not peer.available():
            loaded[peer.name] = peer_table.NOT_INSTALLED
        else:
            try:
                loaded[peer.name] = peer.load()
            except Exception as error:  # a broken install is a result, not a crash
                loaded[peer.name] = f"failed to import: {type(error).__name__}: {error}"
    return loaded[peer.name]


# ---- the machine ----

def machine_info() -> dict:
    """CPU count, platform, BLAS kernel (threadpoolctl, else numpy's config), OpenBLAS env."""
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "python": platform.python_version(),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
    }
    try:
        import threadpoolctl

        info["blas"] = [
            {k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads",
                                     "filepath")}
            for lib in threadpoolctl.threadpool_info()
        ]
        kernels = [lib.get("architecture") for lib in threadpoolctl.threadpool_info()
                   if lib.get("user_api") == "blas"]
        info["blas_kernel"] = ", ".join(str(k) for k in kernels) or "unknown"
    except ImportError:
        try:
            config = np.show_config(mode="dicts")
        except TypeError:  # NumPy before 1.25 only prints its configuration
            config = {}
        blas = config.get("Build Dependencies", {}).get("blas", {})
        info["blas"] = [blas]
        info["blas_kernel"] = (
            f"{blas.get('name', 'unknown')} {blas.get('version', '')} (install threadpoolctl "
            f"for the kernel)"
        )
    return info


def _load_average():
    """The 1-minute load average (other processes compete for the CPUs), or None."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def versions(engines) -> dict:
    """Python, NumPy and every engine's version ("not installed" when absent)."""
    out = {"python": platform.python_version(), "numpy": np.__version__}
    for peer in engines:
        out[peer.name] = peer.version()
    return out


# ---- writing ----

def render_markdown(report, workloads=None) -> str:
    """The report as Markdown: machine, one table per workload with its summary lines, the
    targets, the notes. `workloads` give the summaries and notes (None: the registry's)."""
    by_name = {w.name: w for w in (registry.WORKLOADS if workloads is None else workloads)}
    machine = report["machine"]
    lines = [
        "# diffkit performance",
        "",
        f"Command: `{report.get('command', 'diffkit bench')}` ({report['seconds']} s). "
        f"Median of {report['settings']['repeats']} repeats (min-max beside it), engines "
        "in a shuffled order; ratio = engine / diffkit (above 1: diffkit is faster). Every "
        "engine's result was checked against diffkit's before its time counted.",
        "",
        f"Machine: {machine['cpu_count']} CPUs, {machine['processor']}; Python "
        f"{machine['python']}; BLAS kernel {machine['blas_kernel']}; "
        f"OPENBLAS_CORETYPE={machine['OPENBLAS_CORETYPE']}, "
        f"OPENBLAS_L2_SIZE={machine['OPENBLAS_L2_SIZE']}; 1-minute load average "
        f"{machine['load_average']['before']} before, {machine['load_average']['after']} after "
        "(above 0: other processes shared the CPUs).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()) + ".",
        "",
    ]
    notes = []
    for name, result in report["timing"].items():
        lines += [f"## {name}: {result['title']}", ""] + _table(result) + [""]
        workload = by_name.get(name)
        summary = _growth_lines(result)
        if workload is not None and workload.summary is not None:
            summary += workload.summary(result)
        if summary:
            lines += summary + [""]
        if workload is not None:
            notes += [note for note in workload.notes if note not in notes]
    lines += ["## Targets", "", "| workload | target | holds | measured |",
              "|---|---|---|---|"]
    for t in report["targets"]:
        holds = {True: "yes", False: "NO", None: "not measured"}[t["holds"]]
        lines.append(f"| {t['workload']} | {t['target']} | {holds} | {t['detail']} |")
    lines += ["", "## Notes", ""] + [f"- {note}" for note in notes + NOTES] + [""]
    return "\n".join(lines)


def _table(result):
    """The Markdown table of a workload's rows: size (if any), engine, times, ratio, status."""
    label = result["size_label"]
    header = ([label] if label else []) + ["engine", "median", "min-max", "ratio", "status"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in result["rows"]:
        cells = [str(row["size"])] if label else []
        spread = (f"{format_seconds(row['min_s'])} - {format_seconds(row['max_s'])}"
                  if row.get("median_s") is not None else "-")
        ratio = f"{row['ratio']:.2f}" if row.get("ratio") is not None else "-"
        cells += [row["engine"], format_seconds(row.get("median_s")), spread, ratio,
                  row["status"]]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _growth_lines(result):
    """One line per growth fit of the result: a log-log slope, or a factor per step."""
    lines = []
    for engine, fit in result.get("growth", {}).items():
        if "loglog_slope" in fit:
            lines.append(f"- {engine}: log-log slope {fit['loglog_slope']:.2f} ({fit['fit']})")
        else:
            lines.append(f"- {engine}: x{fit['per_step_factor']:.2f} per step ({fit['fit']})")
    return lines


NOTES = [
    "JAX runs with float64 enabled; jit times exclude compilation (the first call), and so "
    "do diffkit-compile's (diffkit.compile traces once; its rows are the compiled calls).",
    "Garbage collection stays on while timing, as in a user's program.",
]


def write_report(report, out: Path, workloads=None) -> list:
    """Write performance.md and performance.json into `out` (`workloads` as render_markdown);
    return their paths."""
    out.mkdir(parents=True, exist_ok=True)
    md = out / "performance.md"
    js = out / "performance.json"
    md.write_text(render_markdown(report, workloads))
    js.write_text(json.dumps(_finite(report), indent=1, allow_nan=False) + "\n")
    return [md, js]


def _finite(obj):
    """Replace non-finite floats by None so the JSON is strict."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return _finite(obj.item())
    return obj
