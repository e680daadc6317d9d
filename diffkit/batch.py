"""Many cases at once: worker processes that import diffkit once, a timeout and crash isolation
per case, results streamed to JSON Lines (resumable) and JUnit XML; on this machine or on Dask."""

from __future__ import annotations

import collections
import json
import math
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
import warnings
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
_WARM_UP = Case("warm-up", "x", {"x": 1.0})


class WorkerStartError(DiffkitError):
    """A worker process could not start (diffkit not importable by its Python, no memory)."""


def can_fork() -> bool:
    """Return True when a worker may be forked from this process: Linux, and no other Python
    thread (the command line's case; a test runner or a Dask client may have some).

    fork copies the calling thread only, so a lock another thread holds stays locked in the
    child forever; with one thread there is none. A forked worker starts in milliseconds with
    diffkit already imported, where a new interpreter takes over a second to import it.
    """
    # JAX runs threads of its own, and warns (RuntimeWarning) at any fork once imported
    return (sys.platform.startswith("linux") and threading.active_count() == 1
            and "jax" not in sys.modules)


class Child:
    """One worker process that evaluates the cases sent to it: one JSON line in, one result
    record line out, its first line '{"ready": true}'.

    Forked from this process when `fork` (see can_fork: diffkit is already imported there), else
    a new interpreter (`python -c`), which works anywhere, also in a Dask worker, whose process
    is daemonic and may not have multiprocessing children. `others` are the pipe ends of the
    other workers, closed in a forked child so that each worker sees its input end when this
    process ends.
    """

    def __init__(self, fork: bool = False, others=()):
        self.ready = False
        self.case = None  # the case running, and since when
        self.since = time.monotonic()
        self.stderr = collections.deque(maxlen=8)
        self.ended = False
        self.stderr_ended = False
        self._lines = b""
        self._status = None
        self.process = None
        if fork:
            self._fork(others)
        else:
            self._spawn()

    def _spawn(self):
        env = dict(os.environ)
        for name in THREAD_LIMITS:
            env.setdefault(name, "1")
        self.process = subprocess.Popen([sys.executable, "-c", _SERVE], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, bufsize=0)
        self.pid = self.process.pid
        self.fds = (self.process.stdin.fileno(), self.process.stdout.fileno(),
                    self.process.stderr.fileno())

    def _fork(self, others):
        to_read, to_write = os.pipe()
        from_read, from_write = os.pipe()
        err_read, err_write = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # else the child would print them once more
            if stream is not None:
                stream.flush()
        with warnings.catch_warnings():
            # Python 3.12+ warns on fork when the process has other OS threads. can_fork saw
            # no other Python thread; what remains is NumPy's BLAS pool, which OpenBLAS
            # makes fork-safe itself (pthread_atfork), so the warning does not apply here.
            warnings.filterwarnings("ignore", "This process .* is multi-threaded",
                                    DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the worker: it must never return into this process's code
            code = 1
            try:
                for fd in (to_write, from_read, err_read, *others):
                    os.close(fd)
                signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends it quietly
                os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
                os.dup2(err_write, 1)
                os.dup2(err_write, 2)
                _serve(to_read, from_write, warm=False)
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                os._exit(code)
        for fd in (to_read, from_write, err_write):
            os.close(fd)
        self.pid = pid
        self.fds = (to_write, from_read, err_read)

    def send(self, case: Case):
        """Start `case` in this worker (a worker already gone shows at its end of output)."""
        self.case, self.since = case, time.monotonic()
        data = json.dumps(case.to_dict()).encode() + b"\n"
        try:
            while data:
                data = data[os.write(self.fds[0], data):]
        except OSError:
            pass

    def feed(self, fd) -> list:
        """Read what `fd` (one of the worker's outputs) has; return the complete result records
        and 'ready' messages of its output, then None when that output has ended."""
        data = os.read(fd, 1 << 16)
        if fd == self.fds[2]:
            self.stderr_ended = not data
            self.stderr.extend(line.decode("utf-8", "replace").strip()
                               for line in data.splitlines())
            return []
        if not data:
            self.ended = True
            return [None]
        *lines, self._lines = (self._lines + data).split(b"\n")
        return [json.loads(line) for line in lines]

    def take(self, message):
        """Return the record in a message of the worker (clearing its case), or None."""
        if message.get("ready"):
            self.ready = True
            return None
        self.case = None
        return message

    def next_message(self, timeout: float):
        """Return the worker's next message (None: it ended), waiting at most `timeout` s;
        raises TimeoutError."""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            for fd in self.fds[1:]:
                selector.register(fd, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                for key, _ in selector.select(remaining):
                    messages = self.feed(key.fd)
                    if key.fd == self.fds[2] and self.stderr_ended:
                        selector.unregister(key.fd)
                    if messages:  # one at a time: the worker answers one case at a time
                        return messages[0]

    def died(self) -> str:
        """Return why the worker ended (it has ended, or is ending): one line."""
        code = self._wait(5.0)
        if code is None:
            self.kill()
            code = self._status
        if code is not None and code < 0:
            try:
                how = f"killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"killed by signal {-code}"
        else:
            how = f"exit status {code}"
        self._drain_stderr()
        last = next((line for line in reversed(self.stderr) if line), "")
        return f"the worker process died ({how})" + (f": {last[:200]}" if last else "")

    def _drain_stderr(self):
        # its last words (a traceback, faulthandler's report) may still be in the pipe
        with selectors.DefaultSelector() as selector:
            try:
                selector.register(self.fds[2], selectors.EVENT_READ)
            except (ValueError, OSError):
                return
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline and selector.select(0.05):
                data = os.read(self.fds[2], 1 << 16)
                if not data:
                    return
                self.stderr.extend(line.decode("utf-8", "replace").strip()
                                   for line in data.splitlines())

    def _wait(self, timeout):
        """Return the exit code once the worker has ended (-N: signal N), or None."""
        deadline = time.monotonic() + timeout
        while self._status is None:
            if self.process is not None:
                self._status = self.process.poll()
            else:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self._status = os.waitstatus_to_exitcode(status)
            if self._status is None:
                if time.monotonic() >= deadline:
                    return None
                time.sleep(0.005)
        return self._status

    def kill(self):
        """End the worker now (SIGKILL: a case that hangs in C code never returns) and close
        its pipes."""
        if self._status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if self.process is not None:
                self._status = self.process.wait()
            else:
                self._status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        if self.process is not None:
            for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
                stream.close()
        elif self.fds:
            for fd in self.fds:
                os.close(fd)
        self.fds = ()


def serve():
    """A spawned worker's main loop: cases as JSON lines on stdin, result records on stdout."""
    out = os.dup(1)
    os.dup2(2, 1)  # print() anywhere in a case must not corrupt the result channel
    _serve(0, out, warm=True)


def _serve(read_fd, write_fd, warm):
    import faulthandler

    faulthandler.enable(file=2)  # a segfault leaves its reason on stderr, which the parent reports
    from diffkit.cases import evaluate

    if warm:
        evaluate(_WARM_UP)  # first-call costs (SymPy) before any timeout
    with open(read_fd, "rb") as cases, open(write_fd, "wb", buffering=0) as out:
        out.write(b'{"ready": true}\n')
        for line in cases:
            record = evaluate(Case(**json.loads(line)))
            out.write(json.dumps(record, allow_nan=False).encode() + b"\n")


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
    fork = can_fork()
    if fork:  # once here, not in every worker: they inherit it
        from diffkit.cases import evaluate

        evaluate(_WARM_UP)
    children = []
    with selectors.DefaultSelector() as selector:

        def start():
            others = [fd for child in children for fd in child.fds]
            child = Child(fork, others + [selector.fileno()] if fork else ())
            for fd in child.fds[1:]:
                selector.register(fd, selectors.EVENT_READ, child)
            return child

        def replace(child):
            for fd in child.fds[1:]:
                if fd in selector.get_map():
                    selector.unregister(fd)
            child.kill()
            children.remove(child)
            children.append(start())

        try:
            for _ in range(min(jobs, len(pending))):
                children.append(start())
            while pending or any(child.case is not None for child in children):
                for child in children:
                    if child.ready and child.case is None and pending:
                        child.send(pending.popleft())
                for key, _ in selector.select(_wait(children, timeout)):
                    child = key.data
                    if child not in children or key.fd not in child.fds:
                        continue  # replaced while this event waited
                    messages = child.feed(key.fd)
                    if key.fd == child.fds[2] and child.stderr_ended:
                        selector.unregister(key.fd)  # else it would be ready forever
                    for message in messages:
                        if message is None:  # the worker died: a crash, or no memory
                            case, reason = child.case, child.died()
                            if case is None and not child.ready:
                                raise WorkerStartError(f"a worker process could not start: "
                                                       f"{reason}")
                            replace(child)
                            if case is not None:
                                yield error_record(case, reason, time.monotonic() - child.since)
                            break
                        record = child.take(message)
                        if record is not None:
                            yield record
                            if record["verdict"] == "error":
                                replace(child)  # an error may have left it broken (MemoryError)
                                break
                now = time.monotonic()
                for child in list(children):
                    if child.case is not None and now - child.since > timeout:
                        case = child.case
                        replace(child)
                        yield error_record(case, f"timed out after {timeout:g} s",
                                           now - child.since)
                    elif not child.ready and now - child.since > START_SECONDS:
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
