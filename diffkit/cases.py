"""Case files: the schema of one verification case, read from TOML (`[[case]]`) or JSON Lines,
validated whole before anything runs, and the result record of one case (`evaluate`)."""

from __future__ import annotations

import json
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from diffkit.errors import DiffkitError, InputError, first_line

FIELDS = ("name", "expr", "at", "order", "expect", "rtol", "atol")
REQUIRED = ("name", "expr", "at")
EXPECTATIONS = ("agree", "kink", "disagree")
VERDICTS = EXPECTATIONS + ("error",)
KINDS = {".toml": "toml", ".jsonl": "jsonl"}
MAX_NAME = 200

# a [[case]] header on a line of its own (a comment may follow): where each case's line is
_CASE_HEADER = re.compile(r"""^[ \t]*\[\[[ \t]*(case|"case"|'case')[ \t]*\]\][ \t]*(#.*)?$""")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Case:
    """One case: an expression of the verify grammar, its point, and the verdict expected.

    `at` maps every variable of `expr` to a finite float; `source` and `line` say where the case
    was read (for messages; empty and 0 when it was built in Python).

    Example:
        >>> Case("square", "x**2", {"x": 3.0}).expect
        'agree'
    """

    name: str
    expr: str
    at: dict = field(hash=False)
    order: int = 1
    expect: str = "agree"
    rtol: float | None = None
    atol: float | None = None
    source: str = field(default="", compare=False)
    line: int = field(default=0, compare=False)

    def to_dict(self) -> dict:
        """Return the case as a plain dict of its schema fields (defaults included, no None).

        Example:
            >>> Case("c", "x", {"x": 1.0}).to_dict()
            {'name': 'c', 'expr': 'x', 'at': {'x': 1.0}, 'order': 1, 'expect': 'agree'}
        """
        out = {"name": self.name, "expr": self.expr, "at": dict(self.at), "order": self.order,
               "expect": self.expect}
        for key in ("rtol", "atol"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


class CaseFileError(InputError):
    """A case file that cannot be used; the message names the file, line, case and field."""


def load(path) -> list[Case]:
    """Return every case of a `.toml` or `.jsonl` file, all validated; raises CaseFileError.

    Example:
        >>> import tempfile, os
        >>> with tempfile.TemporaryDirectory() as d:
        ...     p = os.path.join(d, "c.jsonl")
        ...     _ = Path(p).write_text('{"name": "sq", "expr": "x**2", "at": {"x": 2}}\\n')
        ...     [(c.name, c.at) for c in load(p)]
        [('sq', {'x': 2.0})]
    """
    path = Path(path)
    kind = KINDS.get(path.suffix.lower())
    if kind is None:
        raise CaseFileError(f"{path}: a case file ends in .toml or .jsonl, not "
                            f"{path.suffix or '(no suffix)'}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise CaseFileError(f"{path}: not UTF-8 text (byte {error.start}); save it as "
                            f"UTF-8") from None
    except OSError as error:
        raise CaseFileError(f"{path}: cannot be read ({error.strerror or error})") from None
    return loads(text, source=str(path), kind=kind)


def loads(text: str, source: str = "<cases>", kind: str = "toml") -> list[Case]:
    """Return the validated cases of `text`, a TOML (`kind="toml"`) or JSON Lines document.

    Example:
        >>> [case] = loads('[[case]]\\nname = "k"\\nexpr = "relu(x)"\\nat = {x = 0}\\n')
        >>> case.name, case.at, case.expect, case.line
        ('k', {'x': 0.0}, 'agree', 1)
    """
    if kind == "toml":
        records = _toml_records(text, source)
    elif kind == "jsonl":
        records = _jsonl_records(text, source)
    else:
        raise CaseFileError(f"{source}: unknown case file kind {kind!r}; use toml or jsonl")
    if not records:
        raise CaseFileError(f"{source}: no cases; write one [[case]] table (TOML) or one JSON "
                            f"object per line (JSON Lines) with name, expr and at")
    cases, seen = [], {}
    for number, (line, record) in enumerate(records, start=1):
        case = _case(record, source, line, number)
        if case.name in seen:
            raise CaseFileError(f"{_where(source, line)}: case {case.name!r}: field 'name': "
                                f"already used at line {seen[case.name]}; names must be unique")
        seen[case.name] = line
        cases.append(case)
    return cases


def dumps_jsonl(cases) -> str:
    """Return the cases as JSON Lines (floats written exactly: `load` gives them back bit for bit).

    Example:
        >>> print(dumps_jsonl([Case("c", "x*y", {"x": 0.1, "y": -2.0})]), end="")
        {"name": "c", "expr": "x*y", "at": {"x": 0.1, "y": -2.0}, "order": 1, "expect": "agree"}
    """
    return "".join(json.dumps(case.to_dict(), allow_nan=False) + "\n" for case in cases)


def dumps_toml(cases) -> str:
    """Return the cases as TOML `[[case]]` tables (floats by repr: they read back exactly).

    Example:
        >>> print(dumps_toml([Case("c", "x*y", {"x": 0.1, "y": -2.0})]), end="")
        [[case]]
        name = "c"
        expr = "x*y"
        at = { x = 0.1, y = -2.0 }
        order = 1
        expect = "agree"
    """
    blocks = []
    for case in cases:
        lines = ["[[case]]", f"name = {_toml_string(case.name)}",
                 f"expr = {_toml_string(case.expr)}",
                 "at = { " + ", ".join(f"{_toml_key(k)} = {_toml_float(v)}"
                                       for k, v in case.at.items()) + " }",
                 f"order = {case.order}", f"expect = {_toml_string(case.expect)}"]
        lines += [f"{key} = {_toml_float(getattr(case, key))}" for key in ("rtol", "atol")
                  if getattr(case, key) is not None]
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def evaluate(case: Case) -> dict:
    """Return the result record of one case: strict-JSON-ready, one line of a results file.

    Keys: name, expr, at, order, expect, verdict ('agree' | 'kink' | 'disagree', or 'error'
    when the comparison could not run), met (verdict == expect), value, gradient (method ->
    {variable: float or None}), hessian (order 2: method -> matrix or None), digits, errors
    (one line per method proven wrong, or the error), notes, seconds (wall time of the
    comparison), table (the comparison table, as `diffkit verify` prints it).

    Example:
        >>> r = evaluate(Case("k", "relu(x)", {"x": 0.0}, expect="kink"))
        >>> r["verdict"], r["met"], r["gradient"]["reverse"]
        ('kink', True, {'x': 0.0})
    """
    from diffkit.compare import compare
    from diffkit.expression import parse

    start = time.perf_counter()
    try:
        expression = parse(case.expr)
        result = compare(expression, *(case.at[n] for n in expression.variables),
                         order=case.order, rtol=case.rtol, atol=case.atol)
        table = result.table()
        out = result.to_dict()
    except (DiffkitError, RecursionError, MemoryError) as error:
        return error_record(case, f"{type(error).__name__}: {error}",
                            time.perf_counter() - start)
    except Exception as error:  # a diffkit bug: this case fails, the batch goes on
        first = first_line(error)
        return error_record(case, f"internal error: {type(error).__name__}: {first}",
                            time.perf_counter() - start)
    if not result.agree:
        verdict = "disagree"
    elif _at_a_kink(result):
        verdict = "kink"
    else:
        verdict = "agree"
    errors = result.blame()
    if not result.agree and not errors:
        errors.append(result.summary()[0])
    record = _record(case, verdict)
    record.update(value=out["value"], gradient=out["gradient"], digits=out["digits"],
                  errors=errors, notes=out["notes"], seconds=time.perf_counter() - start,
                  table=table)
    if case.order == 2:
        record["hessian"] = out["hessian"]
    return record


def _at_a_kink(result) -> bool:
    """True when a derivative the case asks for is a convention at the point: a gradient entry
    at a kink or, at order 2, a Hessian entry at a kink (relu(x)**2 at 0 has slope 0, but second
    derivatives 0 and 2 on either side) or without a value beside a switch at the point."""
    if "kink" in result.status:
        return True
    entries = [s for row in result.hessian_status for s in row]
    return "kink" in entries or (bool(result.kinks) and "undefined" in entries)


def error_record(case: Case, message: str, seconds: float) -> dict:
    """Return the result record of a case that could not be judged (verdict 'error').

    Example:
        >>> error_record(Case("c", "x", {"x": 1.0}), "timed out", 2.0)["met"]
        False
    """
    record = _record(case, "error")
    record.update(value=None, gradient={}, digits=None, errors=[message], notes=[],
                  seconds=seconds, table=f"error: {message}")
    if case.order == 2:
        record["hessian"] = {}
    return record


def _record(case, verdict):
    return {"name": case.name, "expr": case.expr, "at": dict(case.at), "order": case.order,
            "expect": case.expect, "verdict": verdict, "met": verdict == case.expect}


# ---- reading ----


def _where(source, line):
    return f"{source}:{line}" if line else source


def _toml_records(text, source):
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise CaseFileError(f"{source}: reading TOML on Python 3.10 needs tomli (pip "
                                f"install tomli), or write the cases as .jsonl") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"at line (\d+)", str(error))
        line = int(found.group(1)) if found else 0
        raise CaseFileError(f"{_where(source, line)}: not valid TOML: {error}") from None
    extra = sorted(set(document) - {"case"})
    if extra:
        raise CaseFileError(f"{source}: unknown top-level key {extra[0]!r}; a case file holds "
                            f"only [[case]] tables")
    tables = document.get("case", [])
    if not isinstance(tables, list):
        raise CaseFileError(f"{source}: 'case' must be an array of tables: write each case "
                            f"under its own [[case]] header")
    headers = [k for k, row in enumerate(text.splitlines(), start=1) if _CASE_HEADER.match(row)]
    # a header inside a multi-line string would shift the count: then no line is claimed
    lines = headers if len(headers) == len(tables) else [0] * len(tables)
    return list(zip(lines, tables))


def _jsonl_records(text, source):
    records = []
    for line, row in enumerate(text.splitlines(), start=1):
        if not row.strip():
            continue
        try:
            record = json.loads(row, parse_constant=_refuse_constant,
                                object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as error:
            raise CaseFileError(f"{source}:{line}: not valid JSON: {error.msg} (column "
                                f"{error.colno})") from None
        except ValueError as error:
            raise CaseFileError(f"{source}:{line}: {error}") from None
        records.append((line, record))
    return records


def _refuse_constant(name):
    raise ValueError(f"{name} is not a finite number; case files hold finite numbers only")


def _unique_keys(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice in one object")
        out[key] = value
    return out


def _case(record, source, line, number):
    from diffkit.expression import parse

    where = _where(source, line)
    if not isinstance(record, dict):
        raise CaseFileError(f"{where}: case #{number}: a case is a table (TOML) or an object "
                            f"(JSON), not {_kind(record)}")
    name = record.get("name")
    label = f"case {name!r}" if isinstance(name, str) and name else f"case #{number}"

    def fail(key, message):
        return CaseFileError(f"{where}: {label}: field {key!r}: {message}")

    for key in record:
        if key not in FIELDS:
            raise fail(key, f"unknown field; the fields are {', '.join(FIELDS)}")
    for key in REQUIRED:
        if key not in record:
            raise fail(key, "missing; every case needs name, expr and at")
    if not isinstance(name, str) or not name.strip():
        raise fail("name", f"must be a non-empty string, not {_kind(name)}")
    if len(name) > MAX_NAME or _CONTROL.search(name) or name != name.strip():
        raise fail("name", f"must be at most {MAX_NAME} characters, with no control "
                   f"characters or surrounding spaces")
    expr = record["expr"]
    if not isinstance(expr, str):
        raise fail("expr", f"must be a string, not {_kind(expr)}")
    try:
        expression = parse(expr)
    except DiffkitError as error:
        raise fail("expr", str(error)) from None
    except (RecursionError, MemoryError):
        raise fail("expr", "too large or too deeply nested to parse") from None
    variables = expression.variables
    if not variables:
        raise fail("expr", "has no variables: there is nothing to differentiate")
    at = record["at"]
    if not isinstance(at, dict):
        raise fail("at", f"must be a table of variable = number, not {_kind(at)}")
    missing = [v for v in variables if v not in at]
    extra = sorted(set(at) - set(variables))
    if missing:
        raise fail("at", f"gives no value for {', '.join(missing)} (the expression's variables "
                   f"are {', '.join(variables)})")
    if extra:
        raise fail("at", f"names {', '.join(extra)}, which the expression does not use (its "
                   f"variables are {', '.join(variables)})")
    point = {}
    for variable in variables:
        value = _finite(at[variable])
        if value is None:
            raise fail("at", f"the value of {variable!r} must be a finite number, not "
                       f"{_shown(at[variable])}")
        point[variable] = value
    order = record.get("order", 1)
    if type(order) is not int or order not in (1, 2):
        raise fail("order", f"must be 1 or 2, not {_shown(order)}")
    expect = record.get("expect", "agree")
    if expect not in EXPECTATIONS:
        raise fail("expect", f"must be one of {', '.join(EXPECTATIONS)}, not {_shown(expect)}")
    tolerances = {}
    for key in ("rtol", "atol"):
        value = record.get(key)
        if value is not None:
            value = _finite(value)
            if value is None or value < 0:
                raise fail(key, f"must be a finite number >= 0, not {_shown(record[key])}")
        tolerances[key] = value
    return Case(name, expr, point, order, expect, tolerances["rtol"], tolerances["atol"],
                source, line)


def _finite(value) -> float | None:
    """Return value as a finite float, or None when it is not a finite number (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        value = float(value)
    except OverflowError:  # an integer beyond float range
        return None
    return value if math.isfinite(value) else None


def _kind(value) -> str:
    names = {dict: "a table", list: "an array", str: "a string", bool: "a boolean",
             type(None): "null", int: "an integer", float: "a number"}
    return names.get(type(value), f"a {type(value).__name__}")


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ---- writing ----


def _toml_string(text):
    # JSON's escapes (\" \\ \n \uXXXX) are TOML basic-string escapes too
    return json.dumps(text)


def _toml_key(name):
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else _toml_string(name)


def _toml_float(value):
    text = repr(float(value))
    if not math.isfinite(float(value)):
        raise InputError(f"cannot write {text} to a case file: values must be finite")
    return text
