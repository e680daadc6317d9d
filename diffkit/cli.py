"""The command line: `diffkit verify | report | list | bench | conformance | corpus`. The only
module that knows argv, exit codes and the terminal. Exit 0: success/agreement, 1: methods
disagree (or a case missed its expectation), 2: invalid input."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import time

from diffkit.errors import DiffkitError, InputError, first_line

EXIT_AGREE = 0
EXIT_DISAGREE = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3

EPILOG = """exit status: 0 all methods agree (or the command succeeded), 1 the methods disagree,
2 invalid input (one line on stderr, nothing executed) or output that cannot be written,
3 an internal error (a diffkit bug: one line on stderr; please report it)."""

VERIFY_EPILOG = """exit status: 0 all methods agree (with --file: every case met its expectation),
1 the methods disagree (with --file: some case did not; a summary lists them), 2 invalid input
or case file (one line on stderr, nothing executed) or output that cannot be written, 3 an
internal error (a diffkit bug: one line on stderr; please report it)."""

CORPUS_EPILOG = """exit status: 0 the corpus was written, 2 invalid options or an output that cannot
be written (one line on stderr), 3 an internal error (a diffkit bug; please report it)."""

# verify's options that say how to run one expression, and those that run a case file
_ONE_OPTIONS = {"at": "--at", "order": "--order", "rtol": "--rtol", "atol": "--atol"}
_FILE_OPTIONS = {"jobs": "--jobs", "scheduler": "--scheduler", "out": "--out",
                 "resume": "--resume", "junit": "--junit", "timeout": "--timeout"}


# a long option, known or not: "--json", "--at=x=1", "--frobnicate"; never "--x*2" or "-x**2"
_LONG_OPTION = re.compile(r"--[A-Za-z][A-Za-z0-9_-]*(=|$)")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2.

    With `signed_positionals=True`, an argument that starts with '-' is an option only if it is
    a long option (`--name`, `--name=value`) or one of the parser's own option strings (`-h`):
    so "-x**2", "-(x+1)" and "-1e-3*x" are expressions, where argparse alone would read them
    as unknown options.
    """

    def __init__(self, *args, signed_positionals=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.signed_positionals = signed_positionals

    def _parse_optional(self, arg_string):
        if (self.signed_positionals and arg_string.startswith("-")
                and not _LONG_OPTION.match(arg_string)
                and arg_string.split("=", 1)[0] not in self._option_string_actions):
            return None  # argparse's own contract for "this is a positional argument"
        return super()._parse_optional(arg_string)

    def error(self, message):
        self.exit(EXIT_INVALID, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser for every subcommand."""
    parser = _Parser(
        prog="diffkit",
        description="Differentiate one expression four ways (reverse AD, forward AD, SymPy, "
        "finite differences) and show where they disagree.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from diffkit import __version__

    parser.add_argument("--version", action="version", version=f"diffkit {__version__}")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser, metavar="COMMAND")

    verify = sub.add_parser(
        "verify",
        help="differentiate an expression every way at a point and compare",
        description="Differentiate EXPR at a point by reverse and forward AD, SymPy (the "
        "high-precision reference), central differences with Richardson extrapolation and "
        "the complex step, and say whether they agree. With --file, do so for every case "
        "of a case file, in parallel worker processes or on a Dask cluster.",
        epilog=VERIFY_EPILOG,
        signed_positionals=True,
    )
    verify.add_argument("expr", metavar="EXPR", nargs="?", default=None,
                        help='e.g. "1/(1+exp(-(w*x+b)))" or "-x**2" (one that starts with '
                        '"--" goes last, after a lone --)')
    verify.add_argument(
        "--at", action="append", metavar="NAME=VALUE[,NAME=VALUE...]",
        help="the point: one value for every variable of EXPR, e.g. x=1,w=0,b=0 or x=-1.5 "
        "(--at may be repeated: --at x=1 --at w=0)",
    )
    verify.add_argument("--order", type=int, choices=(1, 2), default=None,
                        help="1: gradient (default); 2: gradient and Hessian")
    verify.add_argument("--json", action="store_true", help="print one strict-JSON object")
    verify.add_argument("--rtol", type=float, default=None,
                        help="relative tolerance for every method (default: per method)")
    verify.add_argument("--atol", type=float, default=None,
                        help="absolute tolerance for every method (default: per method)")
    batch = verify.add_argument_group(
        "case files", "instead of EXPR: every case of a .toml ([[case]] tables) or .jsonl file "
        "with name, expr, at and optional order, expect (agree|kink|disagree), rtol, atol")
    batch.add_argument("--file", default=None, metavar="CASES",
                       help="the case file (validated whole before anything runs)")
    batch.add_argument("--jobs", type=int, default=None, metavar="N",
                       help="worker processes (default: the CPU count)")
    batch.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on a Dask cluster at tcp://HOST:PORT instead of local workers")
    batch.add_argument("--out", default=None, metavar="RESULTS.jsonl",
                       help="write one JSON result per case as it finishes")
    batch.add_argument("--resume", action="store_true",
                       help="skip the cases already in --out (after a killed run)")
    batch.add_argument("--junit", default=None, metavar="FILE",
                       help="also write JUnit XML: one testcase per case")
    batch.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                       help="per case; past it the case is an error and its worker is "
                       "replaced (default: 60)")

    report = sub.add_parser(
        "report", help="regenerate the comparison reports (Markdown, JSON, PNG)",
        description="Run the article's experiments, extended, and write reports.",
    )
    report.add_argument("--out", default="reports", metavar="DIR",
                        help="output directory (default: reports/)")
    report.add_argument("--only", default=None, metavar="NAME[,NAME]",
                        help="only these studies, e.g. agreement,xor (an unknown name "
                        "lists every study)")
    report.add_argument("--quick", action="store_true",
                        help="fewer seeds and depths: under a minute")
    report.add_argument("--seeds", type=int, default=None, metavar="N",
                        help="number of seeds for the seeded studies")

    sub.add_parser("list", help="list the catalog of the article's cases",
                   description="Print the catalog: name, formula, variables, default point.")

    bench = sub.add_parser(
        "bench", help="time diffkit against the peers installed",
        description="Time the workloads for diffkit and every installed peer, side by side.",
    )
    bench.add_argument("--quick", action="store_true", help="a short run: under a minute")
    bench.add_argument("--only", default=None, metavar="NAMES", help="only these workloads")
    bench.add_argument("--peers", default=None, metavar="NAMES", help="only these peers")
    bench.add_argument("--out", default="reports", metavar="DIR",
                       help="where performance.md/.json go (default: reports/)")

    conformance = sub.add_parser(
        "conformance", help="check another AD engine, op by op, against diffkit's reference",
        description="Drive an AD engine through an adapter and check every operation alone "
        "(generic points, tails, domain edges, kinks), compositions (the article's cases, "
        "seeded random expressions) and its properties (inputs unchanged, repeatable, the "
        "deepest chain, the cost per logistic-map step).",
        epilog="exit status: 0 every supported op and property conforms, 1 something does "
        "not, 2 an unusable adapter or invalid input (one line on stderr).",
    )
    conformance.add_argument("adapter", metavar="ADAPTER",
                             help="a .py file or module defining variable, value, gradients "
                             "and OPS, or a shipped adapter: diffkit, torch, jax, micrograd")
    conformance.add_argument("--ops", default=None, metavar="NAMES",
                             help="only these operations, e.g. relu,leaky_relu,exp")
    conformance.add_argument("--quick", action="store_true",
                             help="fewer points and shallower chains: a few seconds")
    conformance.add_argument("--json", action="store_true", help="print one strict-JSON object")
    conformance.add_argument("--junit", default=None, metavar="FILE",
                             help="also write the result as JUnit XML to FILE")

    corpus = sub.add_parser(
        "corpus", help="write a seeded corpus of random cases (a case file)",
        description="Write N random expressions of the verify grammar at interior points, as "
        "a case file for `diffkit verify --file`; the same seed gives the same corpus.",
        epilog=CORPUS_EPILOG,
    )
    corpus.add_argument("--random", type=int, required=True, metavar="N",
                        help="the number of cases")
    corpus.add_argument("--seed", type=int, required=True, metavar="S", help="the seed")
    corpus.add_argument("--ops", default=None, metavar="NAMES",
                        help="only these functions, e.g. exp,sin,relu")
    corpus.add_argument("--out", default=None, metavar="FILE",
                        help="a .toml or .jsonl file (default: JSON Lines on stdout)")
    return parser


def _tolerance(value, flag):
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InputError(f"{flag} must be a finite number >= 0, not {value}")
    return value


def run_verify(args) -> int:
    """`diffkit verify`: every method at the point; 0 agree, 1 disagree."""
    from diffkit.compare import compare
    from diffkit.expression import parse, parse_point

    if getattr(args, "file", None) is not None:
        return run_verify_file(args)
    if args.expr is None:
        raise InputError("give an expression EXPR (with --at), or a case file with --file")
    given = [flag for key, flag in _FILE_OPTIONS.items() if _given(args, key)]
    if given:
        raise InputError(f"{given[0]} needs --file (it is about running a case file)")
    if not args.at:
        raise InputError("--at is required with EXPR: give the point, e.g. --at x=1,y=2")
    args.order = 1 if args.order is None else args.order
    rtol = _tolerance(args.rtol, "--rtol")
    atol = _tolerance(args.atol, "--atol")
    expression = parse(args.expr)
    # every --at joined: a name given in two of them is refused like one given twice in one
    point = parse_point(",".join(args.at) if isinstance(args.at, list) else args.at)
    names = expression.variables
    if not names:
        raise InputError("the expression has no variables: there is nothing to differentiate")
    missing = [n for n in names if n not in point]
    extra = sorted(set(point) - set(names))
    if missing:
        raise InputError(f"--at gives no value for {', '.join(missing)} (the expression's "
                         f"variables are {', '.join(names)})")
    if extra:
        raise InputError(f"--at names {', '.join(extra)}, which the expression does not use "
                         f"(its variables are {', '.join(names)})")
    result = compare(expression, *(point[n] for n in names), order=args.order, rtol=rtol,
                     atol=atol)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
    else:
        print(f"{args.expr}  at  {', '.join(f'{n}={point[n]!r}' for n in names)}\n")
        print(result.table())
    return EXIT_AGREE if result.agree else EXIT_DISAGREE


def _given(args, key) -> bool:
    value = getattr(args, key, None)
    return value is not None and value is not False


def run_verify_file(args) -> int:
    """`diffkit verify --file`: every case of a case file; 0 all met, 1 some did not."""
    from diffkit import batch, cases

    if args.expr is not None:
        raise InputError("give either EXPR or --file, not both")
    given = [flag for key, flag in _ONE_OPTIONS.items() if _given(args, key)]
    if given:
        raise InputError(f"{given[0]} does not apply with --file: each case gives its own "
                         f"point, order and tolerances")
    if args.jobs is not None and args.scheduler is not None:
        raise InputError("give --jobs or --scheduler, not both: a Dask cluster has its own "
                         "workers")
    timeout = batch.TIMEOUT if args.timeout is None else args.timeout
    batch.check_options(args.jobs, timeout, args.out, args.resume)
    junit = _junit_path(args.junit)
    loaded = cases.load(args.file)
    progress = _Progress(sys.stderr, len(loaded))
    try:
        records = batch.run(loaded, jobs=args.jobs, scheduler=args.scheduler, timeout=timeout,
                            out=args.out, resume=args.resume, on_record=progress.update)
    finally:
        progress.close()
    _write_junit(junit, args.junit,
                 lambda: batch.junit(records, f"diffkit verify {os.path.basename(args.file)}"))
    missed = [r for r in records if not r["met"]]
    if args.json:
        print(json.dumps({"cases": len(records), "met": len(records) - len(missed),
                          "missed": [r["name"] for r in missed], "results": records},
                         allow_nan=False))
    else:
        print(f"{len(records)} cases: {len(records) - len(missed)} met their expectation, "
              f"{len(missed)} did not" + (":" if missed else ""))
        for r in missed:
            print(f"  {_missed(r)}")
    return EXIT_DISAGREE if missed else EXIT_AGREE


def _missed(record) -> str:
    why = f" ({record['errors'][0]})" if record.get("errors") else ""
    return f"{record['name']}: {record['verdict']}, expected {record['expect']}{why}"


class _Progress:
    """Progress of a batch on stderr: a bar redrawn in place on a terminal (done, failures,
    rate, ETA); elsewhere (a CI log) one line per case that missed its expectation."""

    def __init__(self, stream, total):
        self.stream = stream
        self.total = total
        self.tty = stream is not None and stream.isatty()
        self.start = time.monotonic()
        self.failures = 0
        self.first = None  # (done, time) at the first new record: resumed ones cost nothing
        self.drawn = False

    def update(self, record, done, total):
        now = time.monotonic()
        if self.first is None:
            self.first = (done - 1, now)
        if not record["met"]:
            self.failures += 1
            if not self.tty:
                print(f"FAILED {_missed(record)}", file=self.stream, flush=True)
            else:
                self._clear()
                print(f"FAILED {_missed(record)}", file=self.stream)
        if self.tty:
            self._draw(done, total, now)

    def _draw(self, done, total, now):
        ran = done - self.first[0]
        rate = ran / max(now - self.first[1], 1e-9) if ran > 1 else 0.0
        eta = f"{(total - done) / rate:.0f} s" if rate > 0 else "?"
        width = 30
        filled = int(width * done / max(total, 1))
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {done}/{total}  failures {self.failures}  "
                          f"{rate:.1f} cases/s  ETA {eta} ")
        self.stream.flush()
        self.drawn = True

    def _clear(self):
        if self.drawn:
            self.stream.write("\r\033[K")

    def close(self):
        if self.tty and self.drawn:
            self.stream.write("\n")
            self.stream.flush()


def _corpus(args) -> int:
    from diffkit.corpus import run_corpus

    return run_corpus(args)


def _report(args) -> int:
    from diffkit.report.writer import run_report

    return run_report(args)


def _list(args) -> int:
    from diffkit.experiments.catalog import run_list

    return run_list(args)


def _bench(args) -> int:
    from diffkit.bench.runner import run_bench
    from diffkit.report.writer import check_out_dir

    check_out_dir(args.out)  # before the run: the runner writes its files only at the end
    return run_bench(args)


def _junit_path(given):
    """The absolute path `--junit` names (None when not given), checked before anything runs."""
    if given is None:
        return None
    path = os.path.abspath(given)
    if os.path.isdir(path) or not os.path.isdir(os.path.dirname(path)):
        raise InputError(f"--junit {given} cannot be written: give a file in an existing "
                         f"directory")
    return path


def _write_junit(path, given, text):
    """Write text() to the checked --junit path, if any."""
    if path is None:
        return
    try:
        with open(path, "w", encoding="utf-8") as out:
            out.write(text())
    except OSError as error:
        raise InputError(f"--junit {given} cannot be written ({error.strerror})") from None


def run_conformance(args) -> int:
    """`diffkit conformance`: an engine op by op; 0 conforms, 1 does not."""
    from diffkit.conformance import run

    ops = None if args.ops is None else [n.strip() for n in args.ops.split(",") if n.strip()]
    junit = _junit_path(args.junit)
    result = run(args.adapter, ops=ops, quick=args.quick)
    _write_junit(junit, args.junit, result.junit)
    if args.json:
        print(json.dumps(result.to_dict(), allow_nan=False))
    else:
        print(result.table())
    return EXIT_AGREE if result.agree else EXIT_DISAGREE


COMMANDS = {"verify": run_verify, "report": _report, "list": _list, "bench": _bench,
            "conformance": run_conformance, "corpus": _corpus}


class _OutputLost(Exception):
    """Standard output refused a write for another reason than its reader leaving."""


class _Stdout:
    """Standard output for one command. Once the reader has left (`| head -0`), the rest of the
    output is dropped and the command runs on, so its exit status is still the verdict; any
    other failed write (a full disk: `> /dev/full`) raises _OutputLost."""

    def __init__(self, stream):
        self._stream = stream
        self._dropped = False

    def write(self, text):
        """Return the number of characters taken (all of them, once output is dropped)."""
        if not self._dropped:
            try:
                return self._stream.write(text)
            except OSError as error:
                self._drop(error)
        return len(text)

    def flush(self):
        if not self._dropped:
            try:
                self._stream.flush()
            except OSError as error:
                self._drop(error)

    def _drop(self, error):
        self._dropped = True
        try:  # what is still buffered would fail again when Python flushes at exit
            fileno = self._stream.fileno()
        except (AttributeError, OSError, ValueError):  # no file descriptor: nothing buffered
            fileno = None
        if fileno is not None:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fileno)
            os.close(devnull)
        if not isinstance(error, BrokenPipeError):
            raise _OutputLost(error.strerror or str(error)) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None) -> int:
    """Run the command line; return the exit status."""
    real_stdout = sys.stdout
    if real_stdout is not None:  # None: stdout was closed (`>&-`), and print() writes nothing
        sys.stdout = _Stdout(real_stdout)
    try:
        status = _run(argv)
        if sys.stdout is not None:  # flushed here, not at exit, so a full disk gets one line
            sys.stdout.flush()
        return status
    except _OutputLost as error:  # while printing --help, or in the last flush
        print(f"diffkit: error: {_lost(error)}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        sys.stdout = real_stdout


def _lost(error) -> str:
    return f"cannot write the output ({error}); send it elsewhere"


def _run(argv) -> int:
    """Return the exit status of the command in `argv`, having printed any error in one line."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return done.code
    if args.command is None:
        parser.print_help()
        return EXIT_AGREE
    name = f"diffkit {args.command}"
    try:
        return COMMANDS[args.command](args)
    except _OutputLost as error:
        print(f"{name}: error: {_lost(error)}", file=sys.stderr)
        return EXIT_INVALID
    except DiffkitError as error:
        print(f"{name}: error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except (RecursionError, MemoryError) as error:
        print(f"{name}: error: the input is too large or too deeply nested to "
              f"process ({type(error).__name__})", file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:  # a bug in diffkit: still one line, never a traceback
        first = first_line(error)
        print(f"{name}: internal error: {type(error).__name__}: {first}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
