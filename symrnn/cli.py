"""The ``symrnn`` command line."""

import argparse
import importlib.util
import sys
import textwrap
from pathlib import Path

from . import __version__
from .cell import CellError
from .document import FORMATS, PdfLatexMissing

DESCRIPTION = """\
symrnn: recurrent cells written once in SymPy; derived backpropagation through time, and
standalone NumPy modules that import nothing but numpy.

examples:
  symrnn generate lstm     # writes ./generated/lstm.py, then: from generated import lstm
  symrnn derive lstm       # the derived BPTT equations, in LaTeX (or --format markdown|text)
  symrnn verify lstm       # checks the derivation against sympy.diff of the unrolled cell
  symrnn list              # the cells, their states and parameters
"""

DERIVE_HELP = """\
Prints the forward equations of one step of a cell and the derived backpropagation-through-time
equations, in the seed's notation (Gamma_f^<t>, c~^<t>, elementwise products as odot).

examples:
  symrnn derive lstm                          # LaTeX align* blocks on stdout
  symrnn derive gru --format text             # Unicode, for a terminal
  symrnn derive lstm --standalone -o lstm.tex # a whole document: pdflatex lstm.tex
  symrnn derive lstm --pdf                    # lstm.pdf (needs pdflatex)
"""

VERIFY_HELP = """\
Proves the derivation right on the scalar instance of the cell (H = D = 1, every parameter a
symbol): unrolls K steps, differentiates the loss sum_t g_t a<t> + sum_s h_s s<K> directly with
sympy.diff, and compares it exactly (rational arithmetic at random rational points) with what
the derived backward equations give. Exit status 1 on any mismatch.

examples:
  symrnn verify lstm
  symrnn verify gru --steps 3
"""

GENERATE_HELP = """\
Writes one standalone NumPy module per cell, DIR/NAME.py (and DIR/__init__.py, so that
`from generated import lstm` works from the current directory). Files are written atomically;
a file without symrnn's header is never overwritten unless --force.

examples:
  symrnn generate lstm              # ./generated/lstm.py
  symrnn generate lstm gru -o nets  # ./nets/lstm.py, ./nets/gru.py
  symrnn generate --all --check     # exit 1, listing files that differ from a fresh generation
  symrnn generate lstm --backend numba  # ./generated/lstm_numba.py: compiled time loops
"""


class UsageError(Exception):
    """A mistake in what the user asked for: printed as one line, exit status 2."""


def _cells(names, everything):
    """(what the user named, Cell) for each cell asked for."""
    from .api import get_cell
    from .cells import BUILTINS

    names = list(dict.fromkeys((list(BUILTINS) if everything else []) + list(names)))
    if not names:
        raise UsageError("name at least one cell, or --all; known cells: " + ", ".join(BUILTINS))
    return [(name, get_cell(name)) for name in names]


def _generate(args):
    from .api import generate_source
    from .output import targets, write

    if args.backend == "numba" and importlib.util.find_spec("numba") is None:
        raise UsageError("the numba backend needs numba: pip install 'symrnn[numba]'")
    suffix = "" if args.backend == "numpy" else f"_{args.backend}"
    sources = {cell.name + suffix: generate_source(cell, args.backend, origin=name)
               for name, cell in _cells(args.names, args.all)}
    found = targets(sources, args.output)
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


def _derive(args):
    from . import document
    from .api import derive
    from .output import write_atomic, written_by_symrnn

    ((_, cell),) = _cells([args.name], False)
    derivation = derive(cell)
    if args.pdf:
        data = document.pdf(derivation)
        target = Path(args.output or f"{cell.name}.pdf")
    else:
        text = document.document(derivation, args.format, args.standalone)
        if args.output is None:
            sys.stdout.write(text)
            return 0
        data, target = text.encode("utf-8"), Path(args.output)
    if not (args.force or written_by_symrnn(target)):
        raise UsageError(f"{target} exists and was not written by symrnn; left as it is: use "
                         f"--force to replace it")
    write_atomic(target, data)
    print(target)
    return 0


def _verify(args):
    from .api import derive
    from .verify import verify

    ((_, cell),) = _cells([args.name], False)
    checks = verify(derive(cell), steps=args.steps)
    print(f"symrnn verify {cell.name}: the derived backward against sympy.diff of the scalar "
          f"cell unrolled for {args.steps} steps")
    width = max(len(c.quantity) for c in checks)
    print(f"{'quantity':{width}}  result")
    for c in checks:
        print(f"{c.quantity:{width}}  {'ok' if c.ok else 'MISMATCH: ' + c.detail}")
    failed = sum(not c.ok for c in checks)
    print(f"{len(checks) - failed} of {len(checks)} quantities agree")
    return 1 if failed else 0


def _bench(args):
    import runpy

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench.py"
    if not script.is_file():
        raise UsageError("symrnn bench runs benchmarks/bench.py from a checkout of the repository "
                         "(pip install -e . there); this installation has none")
    bench = runpy.run_path(str(script))
    argv = ["--cells", *args.cells, "--configs", args.configs, "--repeats", str(args.repeats)]
    return bench["main"](argv + (["--out", args.out] if args.out else []))


def _list(args):
    import sympy as sp

    from .cells import BUILTINS, builtin
    from .printing import ShapePrinter

    D, H = sp.Symbol("D"), sp.Symbol("H")
    printer = ShapePrinter()
    for name in BUILTINS:
        cell = builtin(name)
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

    gen = sub.add_parser("generate", help="write standalone NumPy (or numba) modules for cells",
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
    gen.add_argument("--backend", choices=("numpy", "numba"), default="numpy",
                     help="numpy (default): NAME.py, imports only numpy; numba: NAME_numba.py, "
                          "the same contract with the time loops compiled (needs numba)")
    gen.set_defaults(run=_generate)

    der = sub.add_parser("derive", help="print the derived BPTT equations (LaTeX, Markdown, text)",
                         description=DERIVE_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    der.add_argument("name", metavar="NAME", help="the cell (see: symrnn list)")
    der.add_argument("--format", choices=FORMATS, default="latex",
                     help="latex (default), markdown ($$ blocks) or text (Unicode)")
    der.add_argument("--standalone", action="store_true",
                     help="a complete LaTeX document (title, equations, notation)")
    der.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    der.add_argument("--pdf", action="store_true",
                     help="compile the standalone document with pdflatex; writes NAME.pdf or -o")
    der.add_argument("--force", action="store_true",
                     help="overwrite FILE even if symrnn did not write it")
    der.set_defaults(run=_derive)

    ver = sub.add_parser("verify", help="check a derivation against direct differentiation",
                         description=VERIFY_HELP,
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ver.add_argument("name", metavar="NAME", help="the cell (see: symrnn list)")
    ver.add_argument("--steps", type=int, default=2, metavar="K",
                     help="how many steps to unroll (default 2)")
    ver.set_defaults(run=_verify)

    ben = sub.add_parser("bench", help="time generated modules against NumPy, PyTorch, the peak",
                         description="A thin front end to benchmarks/bench.py (in a checkout).\n\n"
                                     "example:\n  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
                                     "symrnn bench lstm --configs small",
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    ben.add_argument("cells", nargs="+", metavar="CELL", help="cells to time (names or files)")
    ben.add_argument("--configs", choices=("small", "all"), default="all",
                     help="small: two quick configurations; all (default): the five of the issue")
    ben.add_argument("--repeats", type=int, default=5, help="rounds; the median is reported")
    ben.add_argument("--out", metavar="FILE", help="the Markdown report (default: "
                                                   "benchmarks/results.md)")
    ben.set_defaults(run=_bench)

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
    except (UsageError, CellError, PdfLatexMissing) as e:
        print(f"symrnn: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"symrnn: error: {e}", file=sys.stderr)
        return 1
