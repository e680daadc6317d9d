"""`diffkit verify` as a user runs it: the table, strict JSON, exit statuses, hostile input."""

import json
import math
import subprocess
import sys

import pytest

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
    assert status in (0, 1)


def test_a_wrong_rule_exits_1(capsys):
    right = ops.sin.vjp[0]
    ops.sin.vjp[0] = lambda g, ans, x: g * ops.sin(x)
    try:
        status, out, _ = run(capsys, "verify", "sin(x)*y", "--at", "x=0.3,y=2")
    finally:
        ops.sin.vjp[0] = right
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
