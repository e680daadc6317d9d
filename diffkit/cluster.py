"""Case batches on a Dask distributed cluster: every Dask worker keeps diffkit worker processes
of its own (`batch.Child`), so a case that hangs or crashes is killed there, never the Dask worker.

A running Dask task cannot be stopped from outside (cancelling a future leaves its thread
running), so the task itself never runs a case: it hands the case to a worker process and waits
at most the timeout, then kills that process. Results are the same records as `--jobs` writes.
A task takes a few cases (CHUNK at most), since Dask spends milliseconds on each task; the worker
processes outlive a batch (the next one starts without a second of imports) and end with their
Dask worker.
"""

from __future__ import annotations

import threading
import time

from distributed import Client, as_completed, get_worker
from distributed.diagnostics.plugin import WorkerPlugin

from diffkit.batch import START_SECONDS, Child, WorkerStartError
from diffkit.cases import Case, error_record
from diffkit.errors import InputError, first_line

PLUGIN = "diffkit-batch"
CONNECT_SECONDS = 10
CHUNK = 16  # cases per Dask task at most; fewer when there are few cases per thread


class Children(WorkerPlugin):
    """On each Dask worker: the idle diffkit worker processes, reused by its task threads."""

    name = PLUGIN
    idempotent = True  # registered again by the next batch: keep this one, and its processes

    def setup(self, worker):
        self._lock = threading.Lock()
        self._idle = []

    def teardown(self, worker):
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()

    def run(self, case: Case, timeout: float) -> dict:
        """Return the result record of `case`, run in a worker process for at most `timeout`."""
        with self._lock:
            child = self._idle.pop() if self._idle else None
        if child is None:
            child = _start()
        child.send(case)
        try:
            message = child.next_message(timeout)
        except TimeoutError:
            child.kill()
            return error_record(case, f"timed out after {timeout:g} s",
                                time.monotonic() - child.since)
        if message is None:
            reason = child.died()
            child.kill()
            return error_record(case, reason, time.monotonic() - child.since)
        record = child.take(message)
        if record["verdict"] == "error":  # as batch.run_local: an error may leave it broken
            child.kill()
        else:
            with self._lock:
                self._idle.append(child)
        return record


def _start() -> Child:
    # a new interpreter, never a fork: a Dask worker runs threads
    child = Child(fork=False)
    try:
        message = child.next_message(START_SECONDS)
    except TimeoutError:
        child.kill()
        raise WorkerStartError(f"a worker process did not start in {START_SECONDS:g} s on "
                               f"this Dask worker") from None
    if message is None:
        reason = child.died()
        child.kill()
        raise WorkerStartError(f"a worker process could not start on this Dask worker: "
                               f"{reason} (is diffkit installed there?)")
    child.take(message)
    return child


def run_cases(cases: list, timeout: float) -> list:
    """The Dask task: return the records of a few cases (dicts of the case schema), in order."""
    children = get_worker().plugins[PLUGIN]
    return [children.run(Case(**case), timeout) for case in cases]


def run_on_cluster(cases, address: str, timeout: float):
    """Yield the result record of every case as it finishes on the Dask cluster at `address`."""
    try:
        client = Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError, TypeError) as error:
        first = first_line(error, type(error).__name__)
        raise InputError(f"cannot reach a Dask scheduler at {address} ({first}); start one "
                         f"with `dask scheduler` and give the tcp://HOST:PORT it prints") from None
    futures = {}
    try:
        # register_plugin is Dask 2023.9+; register_worker_plugin is its older name
        register = getattr(client, "register_plugin", None) or client.register_worker_plugin
        register(Children(), name=PLUGIN)
        threads = sum(client.nthreads().values()) or 1
        size = max(1, min(CHUNK, len(cases) // (4 * threads)))
        chunks = [cases[k:k + size] for k in range(0, len(cases), size)]
        submitted = client.map(run_cases, [[case.to_dict() for case in chunk] for chunk in chunks],
                               timeout=timeout, pure=False)
        futures = dict(zip(submitted, chunks))
        for future in as_completed(submitted):
            chunk = futures.pop(future)
            try:
                records = future.result()
            except Exception as error:  # a task lost with its Dask worker, or one that failed
                first = first_line(error)
                records = [error_record(case, f"the Dask task failed: {type(error).__name__}: "
                                        f"{first}", 0.0) for case in chunk]
            yield from records
    finally:
        if futures:
            client.cancel(list(futures))
        client.close()
