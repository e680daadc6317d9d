"""`diffkit verify` as a user runs it: the table, strict JSON, exit statuses, hostile input."""

import json
import math
import os
import subprocess
import sys

import pytest

import diffkit as dk
from diffkit import cli, ops

SIGMOID = "1/(1+exp(-(w*x+b)))"


def run(capsys, *argv):
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def strict_json(text):
    def refuse(name):
        raise ValueError(f"non-strict JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_help_answers(capsys):
    assert cli.main(["--help"]) == 0
    assert "verify" in capsys.readouterr().out


def test_verify_the_article_neuron(capsys):
    status, out, err = run(capsys, "verify", SIGMOID, "--at", "x=1,w=0,b=0")
    assert status == 0 and err == ""
    rows = {line.split()[0]: line.split()[1:4] for line in out.splitlines()
            if line.split() and line.split()[0] in ("reverse", "forward", "symbolic", "central",
                                                    "complex_step")}
    assert set(rows) == {"reverse", "forward", "symbolic", "central", "complex_step"}
    for method, (db, dw, dx) in rows.items():  # columns in sorted variable order: b, w, x
        assert math.isclose(float(db), 0.25, abs_tol=1e-12), method
        assert math.isclose(float(dw), 0.25, abs_tol=1e-12), method
        assert math.isclose(float(dx), 0.0, abs_tol=1e-12), method
    assert "all methods agree" in out


def test_verify_json_order_2(capsys):
    status, out, _ = run(capsys, "verify", "x**2*y + sin(y)", "--at", "y=0.5,x=2", "--json",
                         "--order", "2")
    assert status == 0
    data = strict_json(out)
    assert data["agree"] is True and data["variables"] == ["x", "y"]
    assert data["value"] == pytest.approx(4 * 0.5 + math.sin(0.5), rel=1e-15)
    expected_grad = {"x": 2 * 2 * 0.5, "y": 4 + math.cos(0.5)}
    expected_hess = [[2 * 0.5, 2 * 2], [2 * 2, -math.sin(0.5)]]
    for method in ("reverse", "forward", "symbolic", "central", "complex_step"):
        for name, value in expected_grad.items():
            assert data["gradient"][method][name] == pytest.approx(value, rel=1e-7)
        hess = data["hessian"][method]
        assert hess is not None, method
        for row, expected_row in zip(hess, expected_hess):
            assert row == pytest.approx(expected_row, rel=1e-5, abs=1e-6), method


def test_non_finite_values_are_null_and_explained(capsys):
    status, out, _ = run(capsys, "verify", "log(x)", "--at", "x=0", "--json")
    data = strict_json(out)
    assert data["value"] is None
    assert any("-inf" in note for note in data["notes"])
    # f is -inf at 0: no reference, AD's inf is not contradicted, nothing is judged
    assert status == 0 and data["agree"] is True


def test_a_wrong_rule_exits_1(capsys):
    with dk.replaced_rule(ops.sin, "vjp", 0, lambda g, ans, x: g * ops.sin(x)):
        status, out, _ = run(capsys, "verify", "sin(x)*y", "--at", "x=0.3,y=2")
    assert status == 1
    assert "DISAGREE" in out


def test_a_kink_is_not_a_disagreement(capsys):
    status, out, _ = run(capsys, "verify", "relu(x) + abs(y)", "--at", "x=0,y=1")
    assert status == 0
    assert "not differentiable here" in out


HOSTILE = [
    "__import__('os').system('touch {marker}')",
    "().__class__.__bases__",
    "lambda: 1",
    "[x for x in y]",
    "x.real",
    "x[0]",
    'f"{x}"',
    "'a'",
    "1j*x",
    "x if y else x",
    "foo(x)",
    "exp(x, x)",
    "leaky_relu(x, beta=1)",
    "_x + 1",
    "",
    "   ",
    "(x",
    "x)",
    "(" * 10_000 + "x" + ")" * 10_000,
    "x+" * 65_000 + "x",
    "10**10**10 * x",
    "1e999 * x",
    "\uff58 + 1",  # fullwidth x
    "\u0445 + 1",  # Cyrillic x
    "exp + 1",
    "open('{marker}', 'w')",
]


@pytest.mark.parametrize("text", HOSTILE, ids=lambda t: t[:30])
def test_hostile_expressions_exit_2_cleanly(capsys, tmp_path, text):
    marker = tmp_path / "pwned"
    status, out, err = run(capsys, "verify", text.replace("{marker}", str(marker)), "--at", "x=1")
    assert status == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not marker.exists()


@pytest.mark.parametrize(
    "at, message",
    [
        ("x=1", "no value for y"),
        ("x=1,y=2,z=3", "z"),
        ("x=1,x=2,y=1", "x"),
        ("x=one,y=1", "x"),
        ("x=nan,y=1", "not finite"),
        ("x=inf,y=1", "not finite"),
        ("x=1e999,y=1", "not finite"),
        ("x=1;y=2", ""),
    ],
)
def test_bad_points_exit_2(capsys, at, message):
    status, out, err = run(capsys, "verify", "x*y", "--at", at)
    assert status == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.parametrize("extra", [["--order", "3"], ["--rtol", "-1"], ["--atol", "nan"]])
def test_bad_options_exit_2(capsys, extra):
    status, _, err = run(capsys, "verify", "x", "--at", "x=1", *extra)
    assert status == 2 and len(err.strip().splitlines()) == 1


def test_installed_command_refuses_code_injection(tmp_path):
    marker = tmp_path / "pwned"
    done = subprocess.run(
        [sys.executable, "-m", "diffkit.cli", "verify",
         f"__import__('os').system('touch {marker}')", "--at", "x=1"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not marker.exists()


def one_clean_line(err):
    return len(err.strip().splitlines()) == 1 and "Traceback" not in err


METHODS = ("reverse", "forward", "symbolic", "central", "complex_step")


@pytest.mark.parametrize(
    "argv, x, f, df",
    [  # f and df are the closed forms: the reference the CLI's numbers are checked against
        (["-x**2", "--at", "x=1.5"], 1.5, lambda x: -(x**2), lambda x: -2 * x),
        (["-x**2", "--at", "x=-1.5"], -1.5, lambda x: -(x**2), lambda x: -2 * x),
        (["-x**2", "--at=x=-1.5"], -1.5, lambda x: -(x**2), lambda x: -2 * x),
        (["--at=x=1.5", "-(x+1)"], 1.5, lambda x: -(x + 1), lambda x: -1.0),
        (["-1e-3*x", "--at=x=1.5"], 1.5, lambda x: -1e-3 * x, lambda x: -1e-3),
        (["+x*x", "--at", "x=-1.5"], -1.5, lambda x: x * x, lambda x: 2 * x),
        (["-x", "--at", "x=2"], 2.0, lambda x: -x, lambda x: -1.0),
        (["-hx", "--at", "hx=2"], 2.0, lambda x: -x, lambda x: -1.0),  # not -h with "x"
        (["--at", "x=-1.5", "--", "-x**2"], -1.5, lambda x: -(x**2), lambda x: -2 * x),
        (["--at", "x=1.5", "--", "--x"], 1.5, lambda x: x, lambda x: 1.0),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else "",
)
def test_an_expression_may_start_with_a_sign(capsys, argv, x, f, df):
    status, out, err = run(capsys, "verify", "--json", *argv)
    assert status == 0 and err == ""
    data = strict_json(out)
    assert data["value"] == pytest.approx(f(x), rel=1e-15)
    for method in METHODS:
        [(name, value)] = data["gradient"][method].items()
        assert value == pytest.approx(df(x), rel=1e-9), method


def test_a_signed_expression_in_the_installed_command():
    done = subprocess.run([sys.executable, "-m", "diffkit.cli", "verify", "-x**2", "--at",
                           "x=-1.5", "--json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert strict_json(done.stdout)["gradient"]["symbolic"]["x"] == pytest.approx(3.0, rel=1e-15)


@pytest.mark.parametrize("argv, named", [
    (["verify", "--frobnicate", "x", "--at", "x=1"], "--frobnicate"),
    (["verify", "x", "--at", "x=1", "--frobnicate"], "--frobnicate"),
    (["verify", "x", "--at", "x=1", "--frobnicate=3"], "--frobnicate"),
    (["verify", "-x", "-y", "--at", "x=1"], "-y"),  # one expression only
    (["verify", "x", "--at", "x=1", "--a", "1"], "--a"),  # ambiguous: --at or --atol
])
def test_unknown_options_still_exit_2(capsys, argv, named):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == "" and one_clean_line(err)
    assert named in err


def test_an_unknown_option_in_the_installed_command():
    done = subprocess.run([sys.executable, "-m", "diffkit.cli", "verify", "x", "--at", "x=1",
                           "--frobnicate"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert one_clean_line(done.stderr) and "--frobnicate" in done.stderr


def test_at_may_be_repeated_but_not_name_a_variable_twice(capsys):
    status, out, _ = run(capsys, "verify", "x*y", "--at", "x=2", "--at", "y=-3", "--json")
    assert status == 0
    assert strict_json(out)["gradient"]["reverse"] == {"x": -3.0, "y": 2.0}
    status, out, err = run(capsys, "verify", "x", "--at", "x=1", "--at", "x=2")
    assert status == 2 and out == "" and one_clean_line(err) and "'x' twice" in err


def test_at_with_spaces_means_the_same_point(capsys):
    status, out, _ = run(capsys, "verify", "x*y", "--at", " x = 2 , y=-3 ", "--json")
    assert status == 0
    assert strict_json(out)["gradient"]["forward"] == {"x": -3.0, "y": 2.0}


@pytest.mark.parametrize("argv", [
    ["verify"],
    ["verify", "--at", "x=1"],
    ["verify", "x"],
    ["verify", "x\x00", "--at", "x=1"],
    ["verify", "x", "--at", "x=1", "--rtol", "-1e-3"],
    ["verify", "x", "--at", "x=1", "--rtol", "inf"],
    ["verify", "x", "--at", "x=1", "--order", "2.0"],
    ["verify", "x", "--at", "x=1", "--order", ""],
    ["verify", "x", "--at", "x"],
    ["verify", "x", "--at", ""],
    ["nonsense"],
])
def test_more_hostile_command_lines_exit_2_cleanly(capsys, argv):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == "" and one_clean_line(err)


def test_no_command_prints_the_help(capsys):
    status, out, err = run(capsys)
    assert status == 0 and err == ""
    assert all(command in out for command in ("verify", "report", "list", "bench"))


def out_cases(tmp_path):
    a_file = tmp_path / "f"
    a_file.write_text("keep me")
    return a_file, [
        (str(a_file / "reports"), f"{a_file} is a file, not a folder; choose another --out"),
        (str(a_file / "a" / "b"), f"{a_file} is a file, not a folder; choose another --out"),
        (str(a_file), "is a file, not a folder; choose another --out"),
        ("/dev/null/reports", "/dev/null is not a folder"),
        ("/sys/diffkit-test/reports", "cannot write in /sys"),  # no one may create files there
        ("", "--out is empty"),
    ]


@pytest.mark.parametrize("command", [
    ["report", "--quick", "--only", "swell"],
    ["bench", "--quick", "--only", "W1", "--peers", "hand"],
])
def test_an_unusable_out_folder_exits_2_before_any_work(capsys, tmp_path, command):
    a_file, cases = out_cases(tmp_path)
    for out_dir, message in cases:
        status, out, err = run(capsys, *command, "--out", out_dir)
        assert status == 2 and out == "", out_dir
        assert one_clean_line(err) and message in err, err
        assert err.startswith(f"diffkit {command[0]}: error: --out {out_dir}")
    assert a_file.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_an_out_folder_under_a_file_in_the_installed_command(tmp_path):
    (tmp_path / "f").write_text("")
    done = subprocess.run([sys.executable, "-m", "diffkit.cli", "report", "--quick", "--out",
                           str(tmp_path / "f" / "reports")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert one_clean_line(done.stderr) and "is a file, not a folder" in done.stderr


class LeftReader:
    """A stdout whose reader has gone, as under `| head -0`."""

    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_a_reader_leaving_keeps_the_verdict(monkeypatch, capsys):
    with dk.replaced_rule(ops.sin, "vjp", 0, lambda g, ans, x: g * ops.sin(x)):
        monkeypatch.setattr(sys, "stdout", LeftReader())
        status = cli.main(["verify", "sin(x)*y", "--at", "x=0.3,y=2"])
        monkeypatch.undo()
    assert status == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("argv, expected", [
    (["verify", "sin(x)", "--at", "x=0.3"], 0),
    (["verify", "sin(x)", "--at", "x=0.3", "--rtol", "0", "--atol", "0"], 1),
    (["list"], 0),
])
def test_closed_pipe_in_the_installed_command(argv, expected):
    command = [sys.executable, "-m", "diffkit.cli", *argv]
    normal = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert normal.returncode == expected and normal.stdout  # the same command, read
    reader, writer = os.pipe()
    os.close(reader)  # the reader is gone before diffkit writes a byte
    try:
        done = subprocess.run(command, stdout=writer, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(writer)
    assert done.returncode == normal.returncode
    assert done.stderr == ""


@pytest.mark.parametrize("argv", [["verify", "x", "--at", "x=1"], ["list"], ["--help"]])
def test_a_full_disk_is_one_line_and_exit_2(argv):
    with open("/dev/full", "w") as full:  # every write fails: No space left on device
        done = subprocess.run([sys.executable, "-m", "diffkit.cli", *argv], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert done.returncode == 2
    assert one_clean_line(done.stderr) and "cannot write the output" in done.stderr
