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
  symrnn verify lstm       # checks the derivation against the unrolled cell, independently
  symrnn list              # the cells, their states and parameters
  symrnn vanish rnn lstm   # how far back the gradient reaches, cell by cell
  symrnn train adding --cell lstm   # the adding problem, on the generated module
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
Checks the derivation independently, in 60-digit arithmetic, on the cell with 3 units and 2
input entries, any other size 4, 5, ... (every parameter an array of random entries): unrolls K
steps and compares the gradient of the loss sum_t g_t . a<t> + sum_s h_s . s<K> by central
differences of the forward equations alone (error ~1e-35) with what the derived backward
equations give, entry by entry, at 3 random points; a quantity agrees when every entry does to
1e-20. Exit status 1 on any mismatch.

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
  symrnn generate lstm --network    # also ./generated/network.py: layers of any cell module
"""


VANISH_HELP = """\
Measures how the gradient of a loss read at the last step decays back through time, for each
cell: parameters from the generated module's init_params (uniform in +-1/sqrt(H), as PyTorch)
with the forget bias added to b_f (cells without a parameter b_f get a note and their init as
is); an input sequence x<1..T> drawn from the standard normal distribution; the loss
L = w . y<T> with a fixed standard-normal w, so dL/dy<t> is zero before the last step; and the
module's backward. Prints ||dL/dx<T-d>|| / ||dL/dx<T>|| at distances d = 1, 10, 100, 1000, 10000
(those below T; d = 0 is the last step), the first distance where it falls below 1e-6, and the
same ratio for the output state a<T-d>. Norms are taken in float64.

examples:
  symrnn vanish rnn gru lstm                          # T = 10000, float32
  symrnn vanish rnn gru lstm --plot vanish.png        # log-log plot (matplotlib: symrnn[plot])
  symrnn vanish lstm --forget-bias 0 --csv lstm.csv   # the whole series, one column per cell
"""

TRAIN_HELP = """\
Trains a cell on the adding problem (Hochreiter & Schmidhuber 1997): sequences of (value,
marker) pairs, values uniform in [0, 1], exactly two markers, one in each half; the target is
the sum of the two marked values. The network is the generated module (forward and backward)
and a linear readout of its last output; MSE loss; Adam with the gradient clipped to a global
norm of --clip (0: no clipping); a fresh batch every step. A fixed test set of 1000 sequences
is scored every 100 steps; training stops once its MSE is below 0.01. Always predicting 1
scores about 0.167 on it.

examples:
  symrnn train adding --cell lstm                     # T = 200 (README: measured runs)
  symrnn train adding --cell rnn --seq-len 100 --plot rnn.png
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


def _plain(cells, command):
    """The experiments feed x alone and size every vector D or H: say so for any other cell."""
    for name, cell in cells:
        if cell.inputs[1:] or cell.extra_sizes:
            what = (f"reads {', '.join(cell.inputs[1:])} beside x" if cell.inputs[1:]
                    else f"has vectors of size {', '.join(cell.extra_sizes)}")
            raise UsageError(f"{command}: cell {name!r} {what}; {command} runs cells whose only "
                             f"input is x and whose vectors have sizes D and H")
    return cells


def _backend_installed(backend):
    if backend == "numba" and importlib.util.find_spec("numba") is None:
        raise UsageError("the numba backend needs numba: pip install 'symrnn[numba]'")


def _generate(args):
    from .api import generate_source, network_source
    from .output import targets, write

    _backend_installed(args.backend)
    suffix = "" if args.backend == "numpy" else f"_{args.backend}"
    network_alone = args.network and not (args.names or args.all)
    cells = [] if network_alone else _cells(args.names, args.all)
    sources = {cell.name + suffix: generate_source(cell, args.backend, origin=name)
               for name, cell in cells}
    if args.network or args.all:
        sources["network"] = network_source()  # one module for every cell and backend
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
    from .verify import NotDefined, instance_sizes, verify

    ((_, cell),) = _cells([args.name], False)
    if args.steps < 1:
        raise UsageError(f"--steps: expected at least 1, got {args.steps}")
    try:
        checks = verify(derive(cell), steps=args.steps)
    except NotDefined as e:
        raise UsageError(str(e)) from None
    sizes = ", ".join(f"{n} = {v}" for n, v in instance_sizes(cell).items())
    print(f"symrnn verify {cell.name}: the derived backward against central differences of the "
          f"cell ({sizes}) unrolled for {args.steps} steps, at 60 digits")
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


def _one_line_errors(parser):
    """Make argparse report a bad option of this subcommand in one line (exit status 2)."""
    parser.error = lambda message: parser.exit(
        2, f"symrnn: error: {parser.prog.split()[-1]}: {message} (see: {parser.prog} --help)\n")
    return parser


def _require(checks):
    """UsageError for the first (ok, what must hold) pair that does not hold."""
    for ok, what in checks:
        if not ok:
            raise UsageError(what)


def _plot_requested(args):
    if args.plot:
        from .plots import PlotExtraMissing, require

        try:
            require()  # before a long run, not after it
        except PlotExtraMissing as e:
            raise UsageError(str(e)) from None


def _vanish(args):
    import numpy as np

    from . import vanish
    from .api import load
    from .forget_bias import note
    from .output import write_atomic
    from .progress import bar

    _require([(args.steps >= 2, f"--steps: expected at least 2, got {args.steps}"),
              (args.hidden >= 1, f"--hidden: expected at least 1, got {args.hidden}"),
              (args.input >= 1, f"--input: expected at least 1, got {args.input}"),
              (args.batch >= 1, f"--batch: expected at least 1, got {args.batch}")])
    _plot_requested(args)
    _backend_installed(args.backend)
    modules = [load(cell, args.backend) for _, cell in _plain(_cells(args.cells, False),
                                                              "vanish")]
    dtype = np.dtype(args.dtype)
    print(f"symrnn vanish: T = {args.steps} steps, H = {args.hidden}, D = {args.input}, "
          f"B = {args.batch}, {dtype}, seed {args.seed}, forget bias {args.forget_bias:g}")
    print("init: each module's init_params (uniform in ±1/√H, as PyTorch), forget bias added "
          "to b_f; x⟨t⟩ ~ N(0, 1); L = w · y⟨T⟩, w ~ N(0, 1)")
    progress = bar(2 * args.steps * len(modules), "vanish")
    decays = []
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        for module in modules:
            decays.append(vanish.measure(
                module, steps=args.steps, hidden=args.hidden, input_size=args.input,
                batch=args.batch, seed=args.seed, forget_bias=args.forget_bias, dtype=dtype,
                progress=progress.update))
    progress.close()
    for decay in decays:
        if line := note(decay.cell, decay.has_forget_bias, args.forget_bias):
            print(line)
    print("\n".join(vanish.format_table(decays)))
    if args.csv:
        import csv
        import io

        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow(["distance", *(d.cell for d in decays)])
        writer.writerows([d, *(f"{v:.9g}" for v in values)]
                         for d, *values in vanish.series_rows(decays))
        write_atomic(Path(args.csv), text.getvalue().encode())
        print(f"wrote {args.csv}")
    if args.plot:
        from . import plots

        plots.vanish(decays, Path(args.plot),
                     f"gradient of w·y⟨T⟩ back through time: T = {args.steps}, H = {args.hidden}, "
                     f"{dtype}, forget bias {args.forget_bias:g}\n(a line ends where the "
                     f"gradient is exactly 0 in {dtype})", vanish.THRESHOLD)
        print(f"wrote {args.plot}")
    return 0


def _train(args):
    import numpy as np

    from . import train
    from .api import load
    from .forget_bias import note
    from .progress import bar, shown

    _require([(args.seq_len >= 2, f"--seq-len: expected at least 2, got {args.seq_len}"),
              (args.hidden >= 1, f"--hidden: expected at least 1, got {args.hidden}"),
              (args.batch >= 1, f"--batch: expected at least 1, got {args.batch}"),
              (args.steps >= 1, f"--steps: expected at least 1, got {args.steps}"),
              (args.lr > 0, f"--lr: expected a positive number, got {args.lr:g}"),
              (args.clip >= 0, f"--clip: expected 0 (no clipping) or more, got {args.clip:g}")])
    _plot_requested(args)
    ((_, cell),) = _plain(_cells([args.cell], False), "train")
    _backend_installed(args.backend)
    module = load(cell, args.backend)
    print(f"symrnn train adding: {module.CELL}, T = {args.seq_len}, H = {args.hidden}, "
          f"batch {args.batch}, {np.dtype(args.dtype)}, Adam lr {args.lr:g}, "
          f"clip {args.clip:g} (global norm), forget bias {args.forget_bias:g}, seed {args.seed}")
    progress = bar(args.steps, f"{module.CELL} T={args.seq_len}")

    def on_check(step, train_mse, test_mse):
        if shown(progress):
            progress.set_postfix_str(f"train {train_mse:.4f} test {test_mse:.4f}")
        else:
            print(f"step {step:6d}  train MSE {train_mse:.4f}  test MSE {test_mse:.4f}",
                  flush=True)

    try:
        result = train.train_adding(
            module, seq_len=args.seq_len, hidden=args.hidden, batch=args.batch,
            steps=args.steps, lr=args.lr, clip=args.clip, seed=args.seed,
            dtype=np.dtype(args.dtype), forget_bias=args.forget_bias,
            on_step=lambda step, loss: progress.update(1), on_check=on_check)
    except train.Diverged as e:
        print(f"symrnn: error: {e}", file=sys.stderr)
        return 1
    finally:
        progress.close()
    if line := note(module.CELL, result.has_forget_bias, args.forget_bias):
        print(line)
    verdict = ("below" if result.test_mse < train.TARGET else "not below")
    print(f"baseline (always predicting 1): test MSE {result.baseline:.4f}")
    print(f"result: {module.CELL}, T = {args.seq_len}, seed {args.seed}: test MSE "
          f"{result.test_mse:.4f} ({verdict} {train.TARGET:g}) after {result.steps} steps, "
          f"{result.seconds:.1f} s")
    if args.plot:
        from . import plots

        plots.losses(result, Path(args.plot), f"adding problem, {module.CELL}, T = "
                     f"{args.seq_len}, H = {args.hidden}, seed {args.seed}", train.TARGET)
        print(f"wrote {args.plot}")
    return 0


def _list(args):
    import sympy as sp

    from .cells import BUILTINS, builtin
    from .printing import ShapePrinter

    D, H = sp.Symbol("D"), sp.Symbol("H")
    printer = ShapePrinter()
    for name in BUILTINS:
        cell = builtin(name)
        extra = {n: sp.Symbol(n) for n in cell.extra_sizes}
        params = ", ".join(f"{p} {printer.doprint(sp.Tuple(*cell.param_shape(p, D, H, **extra)))}"
                           for p in cell.params)
        print(f"{name}\n  states: {', '.join(cell.states)}\n  params: {params}")
        if cell.inputs[1:] or cell.extra_sizes:
            print("  sizes: " + ", ".join(f"{v} {cell.size(v)}" for v in cell.inputs
                                          + cell.states))
        if cell.doc:
            print(textwrap.indent(cell.doc, "  "))
    return 0


def _experiment_options(command):
    """The options vanish and train share: how the cell is initialised and run."""
    command.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    command.add_argument("--forget-bias", type=float, default=1.0, metavar="F",
                         help="added to b_f at initialisation, where the cell has it (default 1)")
    command.add_argument("--backend", choices=("numpy", "numba"), default="numpy",
                         help="the generated module to run: numpy (default) or numba (compiled "
                              "loops, needs numba)")
    command.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                         help="default float32")


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
    gen.add_argument("--all", action="store_true",
                     help="every built-in cell, and the network module")
    gen.add_argument("--network", action="store_true",
                     help="also DIR/network.py: stacked and bidirectional layers of any cell "
                          "module (imports only numpy)")
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

    van = _one_line_errors(sub.add_parser(
        "vanish", help="measure how the gradient vanishes back through time",
        description=VANISH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter))
    van.add_argument("cells", nargs="+", metavar="CELL",
                     help="cells (names, file.py:builder or .toml; see: symrnn list)")
    van.add_argument("--steps", type=int, default=10000, metavar="T",
                     help="sequence length (default 10000)")
    van.add_argument("--hidden", type=int, default=64, metavar="H", help="state size (default 64)")
    van.add_argument("--input", type=int, default=8, metavar="D", help="input size (default 8)")
    van.add_argument("--batch", type=int, default=1, metavar="B", help="sequences (default 1)")
    _experiment_options(van)
    van.add_argument("--plot", metavar="PNG", help="write the plot (needs matplotlib)")
    van.add_argument("--csv", metavar="FILE",
                     help="write the series: distance, then one column per cell")
    van.set_defaults(run=_vanish)

    tra = _one_line_errors(sub.add_parser(
        "train", help="train a cell on the adding problem", description=TRAIN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter))
    tra.add_argument("task", choices=("adding",), help="the task: adding")
    tra.add_argument("--cell", default="lstm", help="the cell (default lstm; see: symrnn list)")
    tra.add_argument("--seq-len", type=int, default=200, metavar="T",
                     help="sequence length (default 200)")
    tra.add_argument("--hidden", type=int, default=64, metavar="H", help="state size (default 64)")
    tra.add_argument("--batch", type=int, default=64, help="sequences per step (default 64)")
    tra.add_argument("--steps", type=int, default=4000, help="at most this many (default 4000)")
    tra.add_argument("--lr", type=float, default=3e-3, help="Adam's step size (default 3e-3)")
    tra.add_argument("--clip", type=float, default=1.0,
                     help="largest global gradient norm; 0: no clipping (default 1)")
    _experiment_options(tra)
    tra.add_argument("--plot", metavar="PNG", help="write the loss curve (needs matplotlib)")
    tra.set_defaults(run=_train)
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
