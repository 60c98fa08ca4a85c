"""The ``symrnn`` command line."""

import argparse
import sys
import textwrap

from . import __version__
from .cell import CellError

DESCRIPTION = """\
symrnn: recurrent cells written once in SymPy; derived backpropagation through time, and
standalone NumPy modules that import nothing but numpy.

example:
  symrnn generate lstm     # writes ./generated/lstm.py, then: from generated import lstm
  symrnn list              # the cells, their states and parameters
"""

GENERATE_HELP = """\
Writes one standalone NumPy module per cell, DIR/NAME.py (and DIR/__init__.py, so that
`from generated import lstm` works from the current directory). Files are written atomically;
a file without symrnn's header is never overwritten unless --force.

examples:
  symrnn generate lstm              # ./generated/lstm.py
  symrnn generate lstm gru -o nets  # ./nets/lstm.py, ./nets/gru.py
  symrnn generate --all --check     # exit 1, listing files that differ from a fresh generation
"""


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


def _cells(names, everything):
    from .cells import BUILTINS, get_cell

    names = list(dict.fromkeys((list(BUILTINS) if everything else []) + list(names)))
    if not names:
        raise UsageError("name at least one cell, or --all; known cells: " + ", ".join(BUILTINS))
    cells = []
    for name in names:
        try:
            cells.append(get_cell(name))
        except KeyError as e:
            raise UsageError(e.args[0]) from None
    return cells


def _generate(args):
    from .api import generate_source
    from .output import targets, write

    cells = _cells(args.names, args.all)
    found = targets({cell.name: generate_source(cell) for cell in cells}, args.output)
    if args.check:
        stale = [t for t in found if not t.is_fresh()]
        for t in stale:
            print(f"would change: {t.path}")
        if not stale:
            print(f"up to date: {', '.join(str(t.path) for t in found)}")
        return 1 if stale else 0
    status = 0
    for t in found:
        if t.is_fresh():
            print(f"{t.path} (unchanged)")
        elif t.is_ours() or args.force:
            write(t)
            print(t.path)
        else:
            print(f"symrnn: {t.path} was not written by symrnn (its first line is not the "
                  f"generated header); left as it is: use --force to replace it", file=sys.stderr)
            status = 1
    return status


def _list(args):
    import sympy as sp

    from .cells import BUILTINS, get_cell
    from .printing import ShapePrinter

    D, H = sp.Symbol("D"), sp.Symbol("H")
    printer = ShapePrinter()
    for name in BUILTINS:
        cell = get_cell(name)
        params = ", ".join(f"{p} {printer.doprint(sp.Tuple(*cell.param_shape(p, D, H)))}"
                           for p in cell.params)
        print(f"{name}\n  states: {', '.join(cell.states)}\n  params: {params}")
        if cell.doc:
            print(textwrap.indent(cell.doc, "  "))
    return 0


def parser():
    main = argparse.ArgumentParser(prog="symrnn", description=DESCRIPTION,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    main.add_argument("--version", action="version", version=f"symrnn {__version__}")
    sub = main.add_subparsers(dest="command", metavar="COMMAND")

    gen = sub.add_parser("generate", help="write standalone NumPy modules for cells",
                         description=GENERATE_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    gen.add_argument("names", nargs="*", metavar="NAME",
                     help="cells to generate (see: symrnn list)")
    gen.add_argument("--all", action="store_true", help="every built-in cell")
    gen.add_argument("-o", "--output", default="generated", metavar="DIR",
                     help="directory to write to (default: ./generated)")
    gen.add_argument("--check", action="store_true",
                     help="write nothing; exit 1 listing the files that would change")
    gen.add_argument("--force", action="store_true",
                     help="also overwrite files that symrnn did not write")
    gen.set_defaults(run=_generate)

    lst = sub.add_parser("list", help="the cells, with their states and parameters",
                         description="Lists the built-in cells with their states and parameter "
                                     "shapes.\n\nexample:\n  symrnn list",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    lst.set_defaults(run=_list)
    return main


def main(argv=None):
    args = parser().parse_args(argv)
    if args.command is None:
        parser().print_help()
        return 2
    try:
        return args.run(args)
    except (UsageError, CellError) as e:
        print(f"symrnn: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"symrnn: error: {e}", file=sys.stderr)
        return 1
