"""The pytest plugin (entry point `pytest11`): collects case files `test_*.diffkit.toml` and
`test_*.diffkit.jsonl`, one test item per case, judged as `diffkit verify --file` judges it.

Outcomes: a case whose verdict is its `expect` passes, except that a met `expect = "disagree"`
is reported as xfailed (a known disagreement, still checked on every run); a case whose verdict
is not its `expect` fails with the comparison table, including a "disagree" case that now agrees
(like `xfail(strict=True)`: the fix is noticed and the file updated). An invalid file is one
collection error naming the file, line and field.
"""

from __future__ import annotations

import pytest

SUFFIXES = (".diffkit.toml", ".diffkit.jsonl")


def pytest_configure(config):
    config.addinivalue_line("markers", "diffkit: a case read from a diffkit case file "
                            "(test_*.diffkit.toml / test_*.diffkit.jsonl)")


def pytest_collect_file(parent, file_path):
    """Return a CaseFile for `test_*.diffkit.toml` / `test_*.diffkit.jsonl`, else None."""
    name = file_path.name
    if name.startswith("test_") and name.endswith(SUFFIXES):
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    """A case file: every case is validated before any runs; an invalid file is one error."""

    def collect(self):
        """Yield one CaseItem per case, in file order."""
        from diffkit.cases import CaseFileError, load

        try:
            cases = load(self.path)
        except CaseFileError as error:
            raise self.CollectError(str(error)) from None
        for case in cases:
            yield CaseItem.from_parent(self, name=case.name, case=case)


class CaseFailed(Exception):
    """A case whose verdict is not the one it expects; args: (header, comparison table)."""


class CaseItem(pytest.Item):
    """One case of a case file, judged by diffkit.cases.evaluate."""

    def __init__(self, *, case, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.add_marker("diffkit")

    def runtest(self):
        """Judge the case: pass, xfail (a met expectation of disagreement) or raise CaseFailed."""
        from diffkit.cases import evaluate

        record = evaluate(self.case)
        self.user_properties.append(("verdict", record["verdict"]))
        if not record["met"]:
            errors = "; ".join(record["errors"])
            header = (f"{self.location[0]}:{self.case.line}: case {self.case.name!r}: expected "
                      f"{self.case.expect}, verdict {record['verdict']}"
                      + (f" ({errors})" if errors else ""))
            raise CaseFailed(header, record["table"])
        if self.case.expect == "disagree":
            pytest.xfail(f"disagrees as expected: {'; '.join(record['errors'])}")

    def repr_failure(self, excinfo):
        """Return the failure text: which expectation was missed, then the comparison table."""
        if isinstance(excinfo.value, CaseFailed):
            header, table = excinfo.value.args
            return f"{header}\n{self.case.expr} at {_point(self.case.at)}\n\n{table}"
        return super().repr_failure(excinfo)

    def reportinfo(self):
        """Return (path, 0-based line, description) for pytest's report headers."""
        return self.path, max(self.case.line - 1, 0), f"diffkit case: {self.name}"


def _point(at: dict) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in at.items())
