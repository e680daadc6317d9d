"""W7, case files at scale: cases per second of `diffkit.batch.run` over a seeded random corpus
(`diffkit corpus`), in worker processes (--jobs 1, --jobs 2) and on a Dask LocalCluster of two
workers; diffkit only (no peer runs case files), every case's verdict checked."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import statistics
import time
from dataclasses import dataclass

from diffkit.bench.protocol import Target, Workload
from diffkit.bench.targets import format_seconds
from diffkit.bench.timing import error_line

NAME = "W7"
SEED = 7  # the corpus: `diffkit corpus --random N --seed 7`
CORPUS, QUICK_CORPUS = 1000, 100
TIMEOUT = 60.0  # per case, batch.run's default
OVERHEAD_LIMIT = 0.020  # seconds per case beyond the case's own work
WALL_LIMIT = 120.0  # the full corpus at --jobs 2
SPEEDUP = 1.7  # --jobs 2 against --jobs 1
DASK_FACTOR = 1.3  # a two-worker LocalCluster against --jobs 2


@dataclass(frozen=True)
class BatchSize:
    """One way to run the corpus of `cases` cases: `jobs` local worker processes, or a Dask
    LocalCluster of `dask_workers` single-threaded worker processes."""

    name: str
    cases: int
    jobs: int | None = None
    dask_workers: int | None = None

    def __str__(self):
        return self.name


SIZES = (BatchSize("jobs 1", CORPUS, jobs=1), BatchSize("jobs 2", CORPUS, jobs=2),
         BatchSize("dask 2", CORPUS, dask_workers=2))
QUICK_SIZES = tuple(BatchSize(s.name, QUICK_CORPUS, s.jobs, s.dask_workers) for s in SIZES)


@dataclass(frozen=True)
class Batch:
    """One batch run: its wall seconds, the cases' own seconds summed, and the names of the cases
    whose verdict was not the one expected."""

    seconds: float
    work: float
    missed: tuple


def build_diffkit(ns, size, address=None):
    """Return run(): the seeded corpus of size.cases cases through batch.run, as a Batch."""
    from diffkit import batch
    from diffkit.corpus import random_cases

    cases = random_cases(size.cases, SEED)

    def run():
        start = time.perf_counter()
        records = batch.run(cases, jobs=size.jobs, scheduler=address, timeout=TIMEOUT)
        seconds = time.perf_counter() - start
        return Batch(seconds, sum(r["seconds"] for r in records),
                     tuple(r["name"] for r in records if not r["met"]))

    return run


@contextlib.contextmanager
def _scheduler(size):
    """The address of a LocalCluster on 127.0.0.1 for a Dask size (closed afterwards), else None."""
    if size.dask_workers is None:
        yield None
        return
    from distributed import LocalCluster

    with LocalCluster(n_workers=size.dask_workers, threads_per_worker=1, processes=True,
                      host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def _one_case(ns):
    """run() of a one-case batch at --jobs 1: a worker's start-up (Python, diffkit's imports, a
    warm-up case) and stop, plus one case."""
    return build_diffkit(ns, BatchSize("start-up", 1, jobs=1))


def time_batches(workload, engines, settings, load, progress=None) -> dict:
    """Per size, `settings.verdict_calls` batch runs of the corpus, one size after another (a
    Dask cluster is up only for its own size); a batch with a missed expectation is reported,
    not timed. Rows as timing.time_calls, their times per case, plus cases per second and the
    cases' own work; at --jobs 1 also the per-case overhead, each batch paired with a one-case
    batch just before it that measures a worker's start-up."""
    sizes = workload.quick_sizes if settings.quick else workload.sizes
    results = {"title": workload.title, "size_label": workload.size_label, "rows": [],
               "corpus": {"cases": sizes[0].cases, "seed": SEED,
                          "command": f"diffkit corpus --random {sizes[0].cases} --seed {SEED}"}}
    peer = next((p for p in engines if p.name == "diffkit"), None)
    ns = load(peer) if peer is not None else "not selected"
    for size in sizes:
        row = {"engine": "diffkit", "size": size.name, "status": "ok"}
        results["rows"].append(row)
        if isinstance(ns, str):
            row["status"] = ns
            continue
        if size.dask_workers is not None and importlib.util.find_spec("distributed") is None:
            row["status"] = "not installed: dask[distributed] (pip install 'diffkit[cluster]')"
            continue
        if progress:
            progress(f"{workload.name} {size.name}")
        done, start_ups = [], []
        try:
            with _scheduler(size) as address:
                run = build_diffkit(ns, size, address)
                start_up = _one_case(ns) if size.jobs == 1 else None
                for _ in range(settings.verdict_calls):
                    if start_up is not None:
                        one = start_up()
                        start_ups.append(one.seconds - one.work)
                    batch = run()
                    if batch.missed:
                        row["status"] = (f"not counted: {len(batch.missed)} of {size.cases} "
                                         f"cases missed their expectation (first: "
                                         f"{batch.missed[0]})")
                        done = []
                        break
                    done.append(batch)
                    gc.collect()
        except Exception as error:  # a cluster that cannot start, a worker that cannot
            row["status"] = f"failed: {error_line(error)}"
            done = []
        if not done:
            continue
        per_case = [d.seconds / size.cases for d in done]
        seconds = statistics.median(d.seconds for d in done)
        work = statistics.median(d.work for d in done)
        row.update(median_s=statistics.median(per_case), min_s=min(per_case),
                   max_s=max(per_case), repeats=len(done), calls_per_repeat=1, batch_s=seconds,
                   cases_per_s=size.cases / seconds, work_per_case_s=work / size.cases)
        if start_ups:
            # the wall time that is neither a worker's start-up nor the cases' own work
            row["start_up_s"] = statistics.median(start_ups)
            row["overhead_per_case_s"] = statistics.median(
                (d.seconds - s - d.work) / size.cases for d, s in zip(done, start_ups))
    return results


def _row(result, name):
    return next((r for r in result["rows"] if r["size"] == name), {})


def _ratio(slow, fast):
    ratio = slow["batch_s"] / fast["batch_s"]
    return ratio, (f"{ratio:.2f}x ({format_seconds(slow['batch_s'])} vs "
                   f"{format_seconds(fast['batch_s'])} a batch)")


def targets(timing) -> list:
    """The issue's goals: the full corpus at --jobs 2 within WALL_LIMIT, --jobs 2 SPEEDUP times
    faster than --jobs 1, Dask within DASK_FACTOR of --jobs 2 (these three judged on the full
    corpus only), and per-case overhead at most OVERHEAD_LIMIT (at --jobs 1)."""
    result = timing[NAME]
    cases = result["corpus"]["cases"]
    one, two, dask = (_row(result, n) for n in ("jobs 1", "jobs 2", "dask 2"))

    def goal(text, rows, check):
        missing = [r for r in rows if r.get("median_s") is None]
        if missing:
            return Target(NAME, text, None, missing[0].get("status", "not run"))
        holds, detail = check()
        if cases < CORPUS:
            return Target(NAME, text, None, f"not judged on {cases} cases (--quick): {detail}")
        return Target(NAME, text, holds, detail)

    def wall():
        return two["batch_s"] <= WALL_LIMIT, f"{format_seconds(two['batch_s'])}"

    def speedup():
        ratio, detail = _ratio(one, two)
        return ratio >= SPEEDUP, detail

    def dask_close():
        ratio, detail = _ratio(dask, two)
        return ratio <= DASK_FACTOR, detail

    out = [goal(f"{CORPUS} random cases at order 1 with --jobs 2 in <= {WALL_LIMIT:g} s", [two],
                wall),
           goal(f"--jobs 2 at least {SPEEDUP:g}x faster than --jobs 1", [one, two], speedup),
           goal(f"a Dask LocalCluster of 2 workers within {DASK_FACTOR:g}x of --jobs 2",
                [dask, two], dask_close)]
    text = f"per-case overhead in a batch <= {OVERHEAD_LIMIT * 1e3:g} ms (--jobs 1)"
    if one.get("overhead_per_case_s") is None:
        out.append(Target(NAME, text, None, one.get("status", "not run")))
    else:
        overhead = one["overhead_per_case_s"]
        out.append(Target(NAME, text, overhead <= OVERHEAD_LIMIT,
                          f"{format_seconds(overhead)} per case beside its own work "
                          f"({format_seconds(one['work_per_case_s'])}), over {cases} cases; "
                          f"worker start-up ({format_seconds(one['start_up_s'])}) left out"))
    return out


def summary(result) -> list:
    """Markdown lines: the corpus, then per run cases per second, batch time, own work."""
    lines = [f"- corpus: `{result['corpus']['command']}` (order 1, expect agree)"]
    for row in result["rows"]:
        if row.get("median_s") is not None:
            line = (f"- {row['size']}: {row['cases_per_s']:.0f} cases/s, "
                    f"{format_seconds(row['batch_s'])} a batch, each case's own work "
                    f"{format_seconds(row['work_per_case_s'])}")
            if "overhead_per_case_s" in row:
                line += (f", overhead {format_seconds(row['overhead_per_case_s'])} per case, "
                         f"worker start-up {format_seconds(row['start_up_s'])}")
            lines.append(line)
    return lines


WORKLOAD = Workload(
    NAME, "case files at scale: cases per second of a batch run (diffkit.batch)",
    {"diffkit": build_diffkit},
    sizes=SIZES,
    quick_sizes=QUICK_SIZES,
    size_label="run",
    targets=targets,
    summary=summary,
    measure=time_batches,
    notes=(
        "W7 runs a seeded random corpus (`diffkit corpus`) through diffkit.batch.run: worker "
        "processes that import diffkit once (--jobs), or a Dask LocalCluster on 127.0.0.1 with "
        "single-threaded workers (each keeps diffkit worker processes of its own). Times are per "
        "case (batch wall time / cases), worker start-up included; a batch counts only when every "
        "case met its expectation. Per-case overhead (--jobs 1) = (batch time - a worker's "
        "start-up - the cases' own seconds) / cases, the start-up measured by a one-case batch "
        "just before each batch. No peer runs case files: diffkit only.",
    ),
)
