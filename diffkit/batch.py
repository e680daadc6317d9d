"""Many cases at once: worker processes that import diffkit once, a timeout and crash isolation
per case, results streamed to JSON Lines (resumable) and JUnit XML; on this machine or on Dask."""

from __future__ import annotations

import collections
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET

from diffkit.cases import Case, error_record
from diffkit.errors import DiffkitError, InputError

TIMEOUT = 60.0  # seconds per case, by default
# A worker that has not imported diffkit after this long is broken, not slow: the batch stops.
START_SECONDS = 300.0
# Each worker runs one case at a time; BLAS threads would only contend with the other workers.
THREAD_LIMITS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
_SERVE = "from diffkit.batch import serve; serve()"
_XML_INVALID = dict.fromkeys(c for c in range(32) if c not in (9, 10, 13))


class WorkerStartError(DiffkitError):
    """A worker process could not start (diffkit not importable by its Python, no memory)."""


class Child:
    """One worker process: a Python that imported diffkit once and evaluates the cases sent to
    it, one JSON line in, one result line out. Its lines (None at its end) go to `inbox` as
    (child, line) pairs, so that one queue can wait on many children at once."""

    def __init__(self, inbox: queue.Queue):
        env = dict(os.environ)
        for name in THREAD_LIMITS:
            env.setdefault(name, "1")
        # a subprocess, not multiprocessing: Dask's worker processes are daemonic, and
        # multiprocessing refuses children to a daemonic process; a fresh interpreter also never
        # inherits a threaded parent's locks (the hazard of fork)
        self.process = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        self.inbox = inbox
        self.ready = False
        self.case = None  # the case running, and since when
        self.since = time.monotonic()
        self.stderr = collections.deque(maxlen=8)
        # the threads close the pipes they read, at the worker's end: closing them from here
        # while a thread reads would race it
        threading.Thread(target=self._read, daemon=True).start()
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _read(self):
        with self.process.stdout as lines:
            for line in lines:
                self.inbox.put((self, line))
        self.inbox.put((self, None))

    def _drain(self):
        with self.process.stderr as lines:
            for line in lines:
                self.stderr.append(line.decode("utf-8", "replace").strip())

    def send(self, case: Case) -> bool:
        """Start `case` in this worker; return False when the worker is gone."""
        self.case, self.since = case, time.monotonic()
        try:
            self.process.stdin.write(json.dumps(case.to_dict()).encode() + b"\n")
            self.process.stdin.flush()
        except OSError:  # the worker died while idle: its end-of-output tells the rest
            return False
        return True

    def take(self, line: bytes):
        """Return the result record in `line` (the running case's), or None for 'ready'."""
        message = json.loads(line)
        if message.get("ready"):
            self.ready = True
            return None
        self.case = None
        return message

    def died(self) -> str:
        """Return why the worker ended (it has ended, or is ending): one line."""
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.process.returncode
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit status {code}"
        self._drainer.join(timeout=2)  # its last words (faulthandler's) may still be in the pipe
        last = next((line for line in reversed(self.stderr) if line), "")
        return f"the worker process died ({how})" + (f": {last[:200]}" if last else "")

    def kill(self):
        """End the worker now (SIGKILL): a case that hangs in C code never returns."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        try:
            self.process.stdin.close()
        except OSError:  # its buffer could not be flushed to the dead worker: nothing to keep
            pass


def serve():
    """The worker's main loop: read cases as JSON lines on stdin, write result records."""
    out = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # print() anywhere in a case must not corrupt the result channel
    import faulthandler

    faulthandler.enable()  # a segfault leaves its reason on stderr, which the parent reports
    from diffkit.cases import evaluate

    evaluate(Case("warm-up", "x", {"x": 1.0}))  # first-call costs (SymPy) before any timeout
    out.write('{"ready": true}\n')
    out.flush()
    for line in sys.stdin:
        record = evaluate(Case(**json.loads(line)))
        out.write(json.dumps(record, allow_nan=False) + "\n")
        out.flush()


def run(cases, *, jobs: int | None = None, scheduler: str | None = None,
        timeout: float = TIMEOUT, out: str | None = None, resume: bool = False,
        on_record=None) -> list[dict]:
    """Evaluate every case in worker processes; return the result records in case order.

    Records stream to `out` (JSON Lines, flushed per line) as cases finish; with `resume`, the
    cases already recorded there are not run again and their records are returned as read.
    `on_record(record, done, total)` is called for each new record. A case that takes longer
    than `timeout` seconds or kills its worker gets verdict 'error'; its worker is replaced.
    `scheduler` ('tcp://HOST:PORT') runs the cases on that Dask cluster instead of `jobs`
    local workers (default: the CPU count).

    Example:
        >>> [r["verdict"] for r in run([Case("k", "relu(x)", {"x": 0.0}, expect="kink")])]
        ['kink']
    """
    jobs = check_options(jobs, timeout, out, resume)
    done = {}
    if resume and out is not None and os.path.exists(out):
        names = {case.name for case in cases}
        recorded, good = read_results(out)
        done = {name: r for name, r in recorded.items() if name in names}
        if good != os.path.getsize(out):  # the torn last line of a killed run
            os.truncate(out, good)
    pending = [case for case in cases if case.name not in done]
    records = dict(done)
    stream = None
    if out is not None:
        try:
            stream = open(out, "a" if resume else "w", encoding="utf-8")
        except OSError as error:
            raise InputError(f"--out {out} cannot be written ({error.strerror}); give a file "
                             f"in an existing directory") from None
    try:
        if not pending:
            results = iter(())
        elif scheduler is not None:
            try:
                from diffkit.cluster import run_on_cluster
            except ImportError as error:
                raise InputError(f"--scheduler needs Dask ({error.name} is missing): pip install "
                                 f"'diffkit[cluster]'") from None
            results = run_on_cluster(pending, scheduler, timeout)
        else:
            results = run_local(pending, jobs, timeout)
        for record in results:
            records[record["name"]] = record
            if stream is not None:
                stream.write(json.dumps(record, allow_nan=False) + "\n")
                stream.flush()
            if on_record is not None:
                on_record(record, len(records), len(cases))
    finally:
        if stream is not None:
            stream.close()
    return [records[case.name] for case in cases]


def check_options(jobs, timeout, out, resume) -> int:
    """Return the number of local workers; raise InputError for an unusable option."""
    if jobs is None:
        jobs = os.cpu_count() or 1
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InputError(f"--jobs must be a whole number >= 1, not {jobs!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not (
            math.isfinite(timeout) and timeout > 0):
        raise InputError(f"--timeout must be a finite number of seconds > 0, not {timeout!r}")
    if resume and out is None:
        raise InputError("--resume needs --out: the results file to continue")
    if out is not None:
        folder = os.path.dirname(os.path.abspath(out))
        if os.path.isdir(out) or not os.path.isdir(folder):
            raise InputError(f"--out {out} cannot be written: give a file in an existing "
                             f"directory")
    return jobs


def run_local(cases, jobs: int, timeout: float):
    """Yield the result record of every case as it finishes, from `jobs` worker processes."""
    pending = collections.deque(cases)
    inbox = queue.Queue()
    children = [Child(inbox) for _ in range(min(jobs, len(pending)))]
    try:
        while pending or any(child.case is not None for child in children):
            for child in children:
                if child.ready and child.case is None and pending:
                    child.send(pending.popleft())
            try:
                child, line = inbox.get(timeout=_wait(children, timeout))
            except queue.Empty:
                child, line = None, None
            if child is not None and child in children:
                record = None
                if line is not None:
                    record = child.take(line)
                    if record is not None:
                        yield record
                if line is None or (record is not None and record["verdict"] == "error"):
                    # an error may leave the worker broken (MemoryError): a fresh one follows
                    case = child.case
                    reason = child.died() if line is None else ""
                    _replace(children, child, inbox)
                    if case is not None:
                        yield error_record(case, reason, time.monotonic() - child.since)
                    elif line is None and not child.ready:
                        raise WorkerStartError(f"a worker process could not start: {reason}")
            for child in list(children):
                overdue = child.case is not None and (
                    time.monotonic() - child.since > timeout)
                if overdue:
                    case, seconds = child.case, time.monotonic() - child.since
                    _replace(children, child, inbox)
                    yield error_record(case, f"timed out after {timeout:g} s", seconds)
                elif not child.ready and time.monotonic() - child.since > START_SECONDS:
                    raise WorkerStartError(f"a worker process did not start in "
                                           f"{START_SECONDS:g} s")
    finally:
        for child in children:
            child.kill()


def _wait(children, timeout):
    """Return how long the pool may sleep before a deadline (a case's or a start's) passes."""
    now = time.monotonic()
    deadlines = [child.since + (timeout if child.ready else START_SECONDS) - now
                 for child in children if child.case is not None or not child.ready]
    return max(0.0, min(deadlines, default=timeout)) + 0.01


def _replace(children, child, inbox):
    child.kill()
    children[children.index(child)] = Child(inbox)


def read_results(path) -> tuple[dict, int]:
    """Return the records of a results file by name, and the byte length of its whole lines.

    A last line without its newline is a write torn by a kill: it is left out (that case runs
    again), and the length tells a resumed run where to cut it off before appending. A whole
    line that is not a record raises InputError.
    """
    with open(path, "rb") as stream:
        lines = stream.read().split(b"\n")
    records, good = {}, 0
    for number, raw in enumerate(lines[:-1], start=1):  # lines[-1]: after the last newline
        if raw.strip():
            try:
                record = json.loads(raw)
                name = record["name"]
            except (ValueError, TypeError, KeyError):
                name = None
            if not isinstance(name, str):
                raise InputError(f"{path}:{number}: not a result record; give --out a results "
                                 f"file written by diffkit verify --file, or a new file")
            records[name] = record
        good += len(raw) + 1
    return records, good


def junit(records, suite: str = "diffkit verify") -> str:
    """Return JUnit XML for the records: one testcase per case, the table as failure text.

    Example:
        >>> r = {"name": "c", "verdict": "agree", "expect": "agree", "met": True,
        ...      "seconds": 0.01, "table": "", "errors": []}
        >>> print(junit([r]).splitlines()[1])
        <testsuites tests="1" failures="0" errors="0" time="0.010">
    """
    failures = sum(1 for r in records if not r["met"] and r["verdict"] != "error")
    errors = sum(1 for r in records if r["verdict"] == "error")
    seconds = f"{sum(r.get('seconds', 0.0) for r in records):.3f}"
    counts = {"tests": str(len(records)), "failures": str(failures), "errors": str(errors),
              "time": seconds}
    root = ET.Element("testsuites", counts)
    suite_element = ET.SubElement(root, "testsuite", {"name": _xml(suite), **counts})
    for r in records:
        case = ET.SubElement(suite_element, "testcase", {
            "classname": _xml(suite), "name": _xml(r["name"]),
            "time": f"{r.get('seconds', 0.0):.3f}"})
        if r["met"]:
            continue
        message = f"verdict {r['verdict']}, expected {r['expect']}"
        if r.get("errors"):
            message += f": {r['errors'][0]}"
        tag = "error" if r["verdict"] == "error" else "failure"
        element = ET.SubElement(case, tag, {"message": _xml(message), "type": r["verdict"]})
        element.text = _xml(r.get("table", ""))
    ET.indent(root)
    return ("<?xml version='1.0' encoding='utf-8'?>\n"
            + ET.tostring(root, encoding="unicode") + "\n")


def _xml(text) -> str:
    # XML 1.0 has no way to write most control characters, even escaped
    return str(text).translate(_XML_INVALID)
