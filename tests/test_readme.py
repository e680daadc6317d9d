"""The README's Python example runs and prints what its comments say."""

import contextlib
import io
import math
import re
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_example_prints_the_article_numbers():
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.DOTALL).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, str(README), "exec"), {})  # our own documentation, not user text
    gradient, hessian = out.getvalue().splitlines()
    assert gradient == "(0.0, 0.25, 0.25)"
    s = 1 / (1 + math.exp(-1.0))
    assert math.isclose(float(hessian), s * (1 - s) * (1 - 2 * s), rel_tol=1e-14)


def test_readme_compile_example_gives_the_engine_numbers():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        for block in blocks[:2]:  # the neuron, then its compiled form
            exec(compile(block, str(README), "exec"), namespace)  # our own documentation
    fast = namespace["fast"]
    assert fast.value_and_grad(1.0, 0.0, 0.0) == (0.5, (0.0, 0.25, 0.25))
    assert "v0 = w * x  # multiply" in out.getvalue()
