"""Case batches: verify --file in worker processes (timeouts, crashed workers, a killed run
resumed), JUnit XML, and the same records from a Dask LocalCluster as from --jobs."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

import pytest

from diffkit import batch
from diffkit.cases import Case, dumps_jsonl, dumps_toml
from diffkit.cli import main

SIGMOID = "1/(1+exp(-(w*x+b)))"

# name, expr, at, expect, and what is known of it without diffkit: its verdict and gradient
KNOWN = [
    ("sigmoid", SIGMOID, {"x": 1.5, "w": -0.5, "b": 0.25}, "agree", "agree"),
    ("relu-kink", "relu(x)", {"x": 0.0}, "kink", "kink"),  # relu switches at exactly 0
    ("abs-kink", "abs(x)*y", {"x": 0.0, "y": 2.0}, "kink", "kink"),
    ("wrong-expectation", "sin(x)*x", {"x": 0.7}, "disagree", "agree"),
    ("smooth", "x**3 - 2*x*y", {"x": -1.25, "y": 3.0}, "agree", "agree"),
]
# rtol = atol = 0: central differences (truncation error ~1e-15 here) must be blamed
STRICT = Case("strict", "exp(x)*sin(x)", {"x": 1.3}, expect="disagree", rtol=0.0, atol=0.0)


def known_gradient(name, at):
    """The gradient of a KNOWN case in closed form; None at a kink (checked separately)."""
    if name == "sigmoid":
        s = 1 / (1 + math.exp(-(at["w"] * at["x"] + at["b"])))
        return {"x": s * (1 - s) * at["w"], "w": s * (1 - s) * at["x"], "b": s * (1 - s)}
    if name == "wrong-expectation":
        return {"x": math.sin(at["x"]) + at["x"] * math.cos(at["x"])}
    if name == "smooth":
        return {"x": 3 * at["x"] ** 2 - 2 * at["y"], "y": -2 * at["x"]}
    return None


def known_cases():
    return [Case(n, e, at, expect=expect) for n, e, at, expect, _ in KNOWN] + [STRICT]


def met_by_hand():
    """name -> whether the case meets its expectation, from KNOWN's verdicts."""
    met = {n: verdict == expect for n, _, _, expect, verdict in KNOWN}
    met["strict"] = True
    return met


def slow_expression(terms=3000):
    # about 7 s of honest work (a long sum) on this machine: far past a 0.5 s timeout
    return "+".join(f"sin({k}.5*x)*exp(y/{k + 1})" for k in range(terms))


def read_jsonl(path):
    with open(path, encoding="utf-8") as stream:
        return [json.loads(line) for line in stream]


def test_a_case_file_with_two_jobs(tmp_path, capsys):
    cases_file = tmp_path / "cases.toml"
    cases_file.write_text(dumps_toml(known_cases()), encoding="utf-8")
    out, junit = tmp_path / "results.jsonl", tmp_path / "junit.xml"
    status = main(["verify", "--file", str(cases_file), "--jobs", "2", "--out", str(out),
                   "--junit", str(junit)])
    stdout, stderr = capsys.readouterr()
    met = met_by_hand()
    assert status == 1, stderr  # one case misses its expectation
    records = read_jsonl(out)
    assert sorted(r["name"] for r in records) == sorted(met)
    for r in records:
        assert r["met"] is met[r["name"]], r["name"]
        expected = known_gradient(r["name"], r["at"])
        if expected is not None:
            for method in ("reverse", "forward", "symbolic", "complex_step"):
                assert r["gradient"][method] == pytest.approx(expected, rel=1e-12)
    by_name = {r["name"]: r for r in records}
    assert by_name["relu-kink"]["verdict"] == "kink"
    assert by_name["relu-kink"]["gradient"]["reverse"] == {"x": 0.0}  # AD's convention at 0
    assert by_name["strict"]["verdict"] == "disagree"
    assert by_name["strict"]["errors"] == ["central is wrong in d/d(x)"]
    # the summary names the one case that missed, and stderr (not a terminal) has one line
    assert stdout.splitlines()[0] == "6 cases: 5 met their expectation, 1 did not:"
    assert stdout.splitlines()[1].startswith("  wrong-expectation: agree, expected disagree")
    assert stderr.splitlines() == ["FAILED wrong-expectation: agree, expected disagree"]
    root = ET.parse(junit).getroot()
    suite = root.find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("6", "1", "0")
    cases = suite.findall("testcase")
    assert sorted(c.get("name") for c in cases) == sorted(met)
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["wrong-expectation"]
    assert "reverse" in failed[0].find("failure").text  # the comparison table


def test_json_output_and_every_expectation_met(tmp_path, capsys):
    met = [Case(n, e, at, expect=verdict) for n, e, at, _, verdict in KNOWN]
    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_text(dumps_jsonl(met), encoding="utf-8")
    status = main(["verify", "--file", str(cases_file), "--jobs", "1", "--json"])
    stdout, stderr = capsys.readouterr()
    report = json.loads(stdout, parse_constant=lambda name: pytest.fail(name))
    assert status == 0 and stderr == ""
    assert (report["cases"], report["met"], report["missed"]) == (len(KNOWN), len(KNOWN), [])
    assert [r["name"] for r in report["results"]] == [n for n, *_ in KNOWN]  # file order


def test_a_hanging_case_times_out_and_the_batch_goes_on(tmp_path, capsys):
    cases = [Case("first", "x*y", {"x": 2.0, "y": 3.0}),
             Case("slow", slow_expression(), {"x": 0.3, "y": 0.2}),
             Case("after", "exp(x)", {"x": 0.5})]
    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_text(dumps_jsonl(cases), encoding="utf-8")
    junit = tmp_path / "j.xml"
    status = main(["verify", "--file", str(cases_file), "--jobs", "1", "--timeout", "0.5",
                   "--junit", str(junit)])
    stdout, _ = capsys.readouterr()
    assert status == 1
    assert "  slow: error, expected agree (timed out after 0.5 s)" in stdout.splitlines()
    suite = ET.parse(junit).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "0", "1")
    errored = [c for c in suite.findall("testcase") if c.find("error") is not None]
    assert [c.get("name") for c in errored] == ["slow"]


# Test-only faults, installed in the worker processes (never in diffkit): compare crashes on
# marked expressions. A forked worker inherits them from the process that runs the batch; a
# spawned one reads them through Python's own sitecustomize hook.
FAULTS = """
import ctypes, importlib, os

module = importlib.import_module("diffkit.compare")
real = module.compare

def compare(f, *args, **kwargs):
    text = getattr(f, "text", "")
    if text == "x + 101":
        ctypes.string_at(0)  # a segmentation fault
    if text == "x + 102":
        os._exit(3)
    if text == "x + 103":
        bytearray(1 << 62)  # MemoryError
    return real(f, *args, **kwargs)

module.compare = compare
"""
# the batch in a process of its own, with one thread (so its workers are forked)
FORKED_BATCH = FAULTS + """
import json, sys
from diffkit import batch
from diffkit.cases import loads
assert batch.can_fork()
records = batch.run(loads(sys.stdin.read(), kind="jsonl"), jobs=1, timeout=60)
print(json.dumps(records))
"""


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "spawned"])
def test_a_crashed_worker_is_replaced_and_the_batch_goes_on(tmp_path, monkeypatch, fork):
    cases = [Case("a", "x*x", {"x": 3.0}), Case("segfault", "x + 101", {"x": 1.0}),
             Case("b", "sin(x)", {"x": 0.5}), Case("exit", "x + 102", {"x": 1.0}),
             Case("memory", "x + 103", {"x": 1.0}), Case("c", "x + 104", {"x": 1.0})]
    if fork:
        done = subprocess.run([sys.executable, "-c", FORKED_BATCH], input=dumps_jsonl(cases),
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        records = json.loads(done.stdout)
    else:
        monkeypatch.setattr(batch, "can_fork", lambda: False)
        (tmp_path / "sitecustomize.py").write_text(FAULTS, encoding="utf-8")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            [str(tmp_path), *filter(None, [os.environ.get("PYTHONPATH")])]))
        records = batch.run(cases, jobs=1, timeout=60)
    by_name = {r["name"]: r for r in records}
    assert [r["name"] for r in records] == [c.name for c in cases]
    assert by_name["a"]["gradient"]["reverse"] == {"x": 6.0}
    assert by_name["b"]["gradient"]["reverse"]["x"] == pytest.approx(math.cos(0.5), rel=1e-15)
    assert by_name["c"]["gradient"]["reverse"] == {"x": 1.0} and by_name["c"]["met"]
    for name, why in [("segfault", "killed by SIGSEGV"), ("exit", "exit status 3"),
                      ("memory", "MemoryError")]:
        assert by_name[name]["verdict"] == "error" and not by_name[name]["met"]
        assert why in by_name[name]["errors"][0], by_name[name]["errors"]


def test_a_killed_run_resumes_with_every_case_once(tmp_path):
    # 20 cases of honest work (~0.1 s each); the run is killed with SIGKILL after 3 results
    cases = [Case(f"sum-{k:02d}", "+".join(f"sin({i + k}.5*x)" for i in range(100)),
                  {"x": 0.05 + 0.1 * k}) for k in range(20)]
    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_text(dumps_jsonl(cases), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    command = [sys.executable, "-m", "diffkit.cli", "verify", "--file", str(cases_file),
               "--jobs", "2", "--out", str(out)]
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and run.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= 3:
                break
            time.sleep(0.005)
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.wait()
    assert run.returncode == -signal.SIGKILL
    before = out.read_bytes()
    whole = before[:before.rfind(b"\n") + 1]
    assert 3 <= whole.count(b"\n") < len(cases)  # killed mid-run
    # a write torn by the kill: half a record without its newline
    out.write_bytes(whole + whole.splitlines(keepends=True)[0][:40])
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    after = out.read_bytes()
    assert after.startswith(whole)  # the finished cases were not run again
    records = [json.loads(line) for line in after.splitlines()]
    assert sorted(r["name"] for r in records) == [c.name for c in cases]  # each exactly once
    for case, r in zip(cases, sorted(records, key=lambda r: r["name"])):
        x = case.at["x"]
        exact = sum((i + k + 0.5) * math.cos((i + k + 0.5) * x)
                    for k in [int(case.name[-2:])] for i in range(100))
        assert r["verdict"] == "agree"
        assert r["gradient"]["reverse"]["x"] == pytest.approx(exact, rel=1e-11, abs=1e-11)


def test_a_results_file_that_is_not_ours_is_refused(tmp_path, capsys):
    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_text(dumps_jsonl([Case("a", "x", {"x": 1.0})]), encoding="utf-8")
    out = tmp_path / "results.jsonl"
    out.write_text('{"name": "a", "verdict": "agree"}\nnot json\n{"name": "b"}\n')
    status = main(["verify", "--file", str(cases_file), "--out", str(out), "--resume"])
    _, err = capsys.readouterr()
    assert status == 2 and err == (f"diffkit verify: error: {out}:2: not a result record; give "
                                   f"--out a results file written by diffkit verify --file, "
                                   f"or a new file\n")


@pytest.mark.parametrize("argv, phrase", [
    (["x", "--file", "F"], "either EXPR or --file"),
    (["--file", "F", "--at", "x=1"], "--at does not apply with --file"),
    (["--file", "F", "--order", "2"], "--order does not apply with --file"),
    (["--file", "F", "--resume"], "--resume needs --out"),
    (["--file", "F", "--jobs", "0"], "--jobs must be a whole number >= 1"),
    (["--file", "F", "--timeout", "nan"], "--timeout must be a finite number"),
    (["--file", "F", "--timeout", "-1"], "--timeout must be a finite number"),
    (["--file", "F", "--jobs", "2", "--scheduler", "tcp://127.0.0.1:1"], "not both"),
    (["--file", "F", "--out", "/nonexistent-dir/r.jsonl"], "--out /nonexistent-dir/r.jsonl"),
    (["--file", "F", "--junit", "/nonexistent-dir/j.xml"], "--junit /nonexistent-dir/j.xml"),
    (["x", "--jobs", "2", "--at", "x=1"], "--jobs needs --file"),
    (["x"], "--at is required"),
    ([], "give an expression EXPR"),
])
def test_misuse_is_one_line_and_exit_2(tmp_path, capsys, argv, phrase):
    cases_file = tmp_path / "cases.jsonl"
    cases_file.write_text(dumps_jsonl([Case("a", "x", {"x": 1.0})]), encoding="utf-8")
    argv = [str(cases_file) if a == "F" else a for a in argv]
    status = main(["verify", *argv])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and phrase in err, err


def test_progress_on_a_terminal_draws_a_bar():
    class Terminal:
        text = ""

        def isatty(self):
            return True

        def write(self, text):
            self.text += text

        def flush(self):
            pass

    from diffkit.cli import _Progress

    screen = Terminal()
    progress = _Progress(screen, 4)
    records = [{"name": n, "met": n != "bad", "verdict": "agree", "expect": "kink",
                "errors": []} for n in ("a", "bad", "c")]
    for done, record in enumerate(records, start=1):
        progress.update(record, done, 4)
    progress.close()
    last = screen.text.split("\r")[-1]
    assert last.startswith("[" + "#" * 22 + "." * 8 + "] 3/4  failures 1  ")
    assert "cases/s  ETA" in last and last.endswith("\n")
    assert "FAILED bad: agree, expected kink\n" in screen.text


def test_a_dask_local_cluster_gives_the_records_of_jobs(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    cases = known_cases() + [Case("slow", slow_expression(), {"x": 0.3, "y": 0.2}),
                             Case("hessian", "x**3*sin(y)", {"x": 2.0, "y": -0.7}, order=2)]
    cases_file = tmp_path / "cases.toml"
    cases_file.write_text(dumps_toml(cases), encoding="utf-8")
    local_out, dask_out = tmp_path / "local.jsonl", tmp_path / "dask.jsonl"
    local = main(["verify", "--file", str(cases_file), "--jobs", "2", "--timeout", "0.5",
                  "--out", str(local_out)])
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        remote = main(["verify", "--file", str(cases_file), "--scheduler",
                       cluster.scheduler_address, "--timeout", "0.5", "--out", str(dask_out)])
    capsys.readouterr()
    assert local == remote == 1  # wrong-expectation and slow miss

    def without_seconds(path):
        return {r["name"]: {k: v for k, v in r.items() if k != "seconds"}
                for r in read_jsonl(path)}

    local_records, dask_records = without_seconds(local_out), without_seconds(dask_out)
    assert sorted(dask_records) == sorted(c.name for c in cases)
    assert dask_records == local_records
    assert dask_records["slow"]["errors"] == ["timed out after 0.5 s"]
    assert len(dask_records["hessian"]["hessian"]["reverse"]) == 2
