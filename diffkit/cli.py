"""The command line: `diffkit verify | report | list | bench`. The only module that knows argv,
exit codes and the terminal. Exit 0: success/agreement, 1: methods disagree, 2: invalid input."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

from diffkit.errors import DiffkitError, InputError

EXIT_AGREE = 0
EXIT_DISAGREE = 1
EXIT_INVALID = 2
EXIT_INTERNAL = 3

EPILOG = """exit status: 0 all methods agree (or the command succeeded), 1 the methods disagree,
2 invalid input (one line on stderr, nothing executed), 3 an internal error (a diffkit bug:
one line on stderr; please report it)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit status 2."""

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
        "the complex step, and say whether they agree.",
        epilog=EPILOG,
    )
    verify.add_argument("expr", metavar="EXPR", help='e.g. "1/(1+exp(-(w*x+b)))"')
    verify.add_argument(
        "--at", required=True, metavar="NAME=VALUE[,NAME=VALUE...]",
        help="the point: one value for every variable of EXPR, e.g. x=1,w=0,b=0",
    )
    verify.add_argument("--order", type=int, choices=(1, 2), default=1,
                        help="1: gradient (default); 2: gradient and Hessian")
    verify.add_argument("--json", action="store_true", help="print one strict-JSON object")
    verify.add_argument("--rtol", type=float, default=None,
                        help="relative tolerance for every method (default: per method)")
    verify.add_argument("--atol", type=float, default=None,
                        help="absolute tolerance for every method (default: per method)")

    report = sub.add_parser(
        "report", help="regenerate the comparison reports (Markdown, JSON, PNG)",
        description="Run the article's experiments, extended, and write reports.",
    )
    report.add_argument("--out", default="reports", metavar="DIR",
                        help="output directory (default: reports/)")
    report.add_argument("--only", default=None, metavar="NAME[,NAME]",
                        help="only these studies: agreement, vanishing, xor, swell")
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
    return parser


def _tolerance(value, flag):
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InputError(f"{flag} must be a finite number >= 0, not {value}")
    return value


def run_verify(args) -> int:
    """`diffkit verify`: every method at the point; 0 agree, 1 disagree."""
    from diffkit.compare import compare
    from diffkit.expression import parse, parse_point

    rtol = _tolerance(args.rtol, "--rtol")
    atol = _tolerance(args.atol, "--atol")
    expression = parse(args.expr)
    point = parse_point(args.at)
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


def _report(args) -> int:
    from diffkit.report.writer import run_report

    return run_report(args)


def _list(args) -> int:
    from diffkit.experiments.catalog import run_list

    return run_list(args)


def _bench(args) -> int:
    from diffkit.bench.runner import run_bench

    return run_bench(args)


COMMANDS = {"verify": run_verify, "report": _report, "list": _list, "bench": _bench}


def main(argv=None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error already printed
        return done.code
    if args.command is None:
        parser.print_help()
        return EXIT_AGREE
    try:
        return COMMANDS[args.command](args)
    except DiffkitError as error:
        print(f"diffkit {args.command}: error: {error}", file=sys.stderr)
        return EXIT_INVALID
    except BrokenPipeError:  # `diffkit list | head`: the reader left; say nothing more
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"diffkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except (RecursionError, MemoryError) as error:
        print(f"diffkit {args.command}: error: the input is too large or too deeply nested to "
              f"process ({type(error).__name__})", file=sys.stderr)
        return EXIT_INVALID
    except Exception as error:  # a bug in diffkit: still one line, never a traceback
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"diffkit {args.command}: internal error: {type(error).__name__}: {first}",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
