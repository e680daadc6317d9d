"""Checking committed report numbers against a fresh run: every number outside "timing" must
match within a tolerance, every string and flag exactly (for CI and for users' own studies)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from diffkit.tolerance import Tolerance

IGNORED = ("timing",)


def differences(fresh, committed, rtol: float = 1e-9, atol: float = 1e-12, where: str = "$",
                limit: int = 20) -> list:
    """Return where two JSON-like values differ (at most `limit` paths); "timing" is skipped.

    Example:
        >>> differences({"a": [1.0, 2.0], "timing": 3}, {"a": [1.0, 2.5], "timing": 9})
        ['$.a[1]: 2.0 != 2.5']
    """
    tolerance = Tolerance(rtol=rtol, atol=atol)
    found = []
    stack = [(where, fresh, committed)]
    while stack and len(found) < limit:
        path, a, b = stack.pop()
        if isinstance(a, dict) and isinstance(b, dict):
            keys = [k for k in a.keys() | b.keys() if k not in IGNORED]
            for key in sorted(keys, reverse=True):
                if key not in a or key not in b:
                    found.append(f"{path}.{key}: only in {'fresh' if key in a else 'committed'}")
                else:
                    stack.append((f"{path}.{key}", a[key], b[key]))
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                found.append(f"{path}: {len(a)} entries != {len(b)}")
                continue
            stack.extend((f"{path}[{i}]", x, y) for i, x, y in reversed(list(zip(range(len(a)),
                                                                                 a, b))))
        elif _is_number(a) and _is_number(b):
            if not tolerance.allows(a, b) and not (math.isnan(a) and math.isnan(b)):
                found.append(f"{path}: {a!r} != {b!r}")
        elif a != b or type(a) is not type(b):
            found.append(f"{path}: {a!r} != {b!r}")
    return found


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def load_committed(study: str, committed) -> dict:
    """Return the committed numbers of `study`: `committed` is a directory or a JSON file.

    Example:
        load_committed("swell", "reports")["logistic_map"][0]["n"]
        1
    """
    path = Path(committed)
    if path.is_dir():
        path = path / f"{study}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def assert_report_matches(study, committed="reports", rtol: float = 1e-9, atol: float = 1e-12,
                          **params) -> None:
    """Re-run a study and assert its numbers match the committed JSON (timing excluded).

    `study` is a name of diffkit's studies or a function returning a JSON-ready dict; `params`
    are passed to it, by default the committed JSON's "parameters" (so a quick report is
    re-run quick). Raises AssertionError listing the first differences.

    Example:
        assert_report_matches("swell", "reports")
    """
    from diffkit.experiments import run_study
    from diffkit.report.writer import to_json

    name = study if isinstance(study, str) else getattr(study, "__name__", "study")
    expected = load_committed(name, committed) if not isinstance(committed, dict) else committed
    params = params or dict(expected.get("parameters", {}))
    result = run_study(study, **params) if isinstance(study, str) else study(**params)
    fresh = json.loads(to_json(result))
    found = differences(fresh, expected, rtol=rtol, atol=atol)
    if found:
        raise AssertionError(
            f"{name}: a fresh run differs from the committed numbers at {len(found)} place(s)"
            f" (first: {found[0]}):\n" + "\n".join(found)
        )
