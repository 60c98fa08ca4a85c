"""The derivation as a document: LaTeX, Markdown, Unicode text, a standalone .tex, a PDF."""

import shutil
import subprocess
import tempfile
from pathlib import Path

import sympy as sp
from sympy.core.symbol import Str

from . import __version__
from .display import SeedLatexPrinter, SeedTextPrinter
from .notation import AffineMap, Block, Delta, Grad, equations, value
from .reductions import UNITS, mean, unitsum
from .render import GENERATED_BY, environment
from .symbols import sym

FORMATS = ("latex", "markdown", "text")
TITLES = ("Forward, at each step t", "Backward, at each step t from T down to 1",
          "Parameter gradients")


class PdfLatexMissing(RuntimeError):
    pass


WORDS = {  # the few symbols the legend's prose needs, per printer
    "text": {"odot": "⊙", "sigma": "σ", "loss": "ℒ = Σ_t ℒ⟨t⟩", "sum": "Σ_t"},
    "latex": {"odot": r"$\odot$", "sigma": r"$\sigma$", "sum": r"$\sum_t$",
              "loss": r"$\mathcal{L} = \sum_t \mathcal{L}^{\langle t \rangle}$"},
}


def _legend(cell, math, words):
    """The notation, each item with its formulas printed by ``math``."""
    state, weight = cell.states[0], next((a for a in cell.affines if len(a.inputs) > 1), None)
    a_t, a_prev, x_t = value(state), value(state, -1), value("x")
    items = [
        f"{math(x_t)} is the input at step t, {math(a_t)} the state {state} at step t and "
        f"{math(a_prev)} at the step before; the output is {math(value('y'))} = {math(a_t)}.",
        f"Products of vectors are elementwise ({words['odot']}); {words['sigma']} is the "
        f"logistic sigmoid.",
    ]
    if weight is not None:
        u, v, W = Str("u"), Str("v"), sym("W_k")
        items.append(
            f"{math(AffineMap(W, 0, value('u'), value('v')))} applies {math(W)} to the "
            f"concatenation of u and v: it is {math(Block(W, u))} {math(value('u'))} + "
            f"{math(Block(W, v))} {math(value('v'))}, where {math(Block(W, u))} holds the "
            f"columns of {math(W)} that read u. "
            f"{math(value('z_k'))} is the pre-activation of gate k: the affine map inside its "
            f"activation.")
    if cell.scalars:
        v = value("v")
        items.append(
            f"{math(mean(v))} is the mean of v over its H units and {math(unitsum(v))} their "
            f"sum: one number per sample, which broadcasts over the units where a vector "
            f"expression reads it (a mean {math(value('mu'))} sends "
            f"{math(Delta(value('mu'), sp.nan) / UNITS)} back to every unit). In a layer norm, "
            f"{math(value('mu_k'))} and "
            f"{math(value('sigma_k'))} are the mean and the standard deviation of the vector "
            f"it normalises.")
    items += [
        f"{math(Delta(value('v'), sp.nan))} = {math(Grad(value('v')))} is the gradient of the "
        f"loss {words['loss']} with respect to v at step t; {math(Delta(a_t, 1))} is the part "
        f"of it that flows back from step t+1 (at t = T: the gradient with respect to the final "
        f"state), and {math(Delta(a_prev, 0))} the part that step t sends back to step t-1.",
        f"{words['sum']} runs over the steps t = 1, ..., T (and over the batch).",
    ]
    return items


def parts(derivation, fmt):
    """The printed sections [(title, [(lhs, rhs), ...]), ...] and the legend's items."""
    eq = equations(derivation)
    printer = SeedTextPrinter() if fmt == "text" else SeedLatexPrinter()
    if fmt == "text":
        def math(e):
            return printer.doprint(e)
    else:
        def math(e):
            return f"${printer.doprint(e)}$"
    sections = [(title, [(printer.doprint(lhs), printer.doprint(rhs)) for lhs, rhs in rows])
                for title, rows in zip(TITLES, (eq.forward, eq.backward, eq.sums), strict=True)]
    words = WORDS["text" if fmt == "text" else "latex"]
    return sections, _legend(derivation.cell, math, words)


def notes(derivation):
    """{code name: its equation as the text derivation prints it}, for every row of the forward
    and backward sections: "dz_f" -> "δ z_f⟨t⟩ = δ Γ_f⟨t⟩ ⊙ Γ_f⟨t⟩ ⊙ (1 - Γ_f⟨t⟩)"."""
    eq, text = equations(derivation), SeedTextPrinter().doprint
    return {eq.names[lhs]: f"{text(lhs)} = {text(rhs)}" for lhs, rhs in eq.forward + eq.backward}


def code_names(derivation):
    """How the text notation maps to the names in a generated module, as one sentence."""
    eq, text = equations(derivation), SeedTextPrinter().doprint
    state = derivation.cell.states[0]
    pairs = [(value(state), state), (value(state, -1), f"{state}_prev"),
             (Delta(value("v"), sp.nan), "dv"), (Delta(value(state), 1), f"d{state}_next"),
             (Delta(value(state, -1), 0), f"d{state}_prev")]
    pairs += [(block, name) for block, name, _ in eq.blocks[:1]]
    names = ", ".join(f"{text(shown)} is {name}" for shown, name in pairs)
    return f"In the code {names}" + (", and so on." if eq.blocks else ".")


def document(derivation, fmt="latex", standalone=False) -> str:
    """The derivation of a cell: ``fmt`` one of FORMATS; ``standalone``: a whole .tex document."""
    if fmt not in FORMATS:
        raise ValueError(f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    if standalone and fmt != "latex":
        raise ValueError("a standalone document is LaTeX: use --format latex")
    sections, legend = parts(derivation, fmt)
    template = "standalone.tex.j2" if standalone else {"latex": "latex.tex.j2",
                                                        "markdown": "markdown.md.j2",
                                                        "text": "text.txt.j2"}[fmt]
    header = (f"{GENERATED_BY} {__version__} from the cell {derivation.cell.name!r}: "
              f"symrnn derive {derivation.cell.name}")
    return environment().get_template(f"derivation/{template}").render(
        header=header, cell=derivation.cell.name, version=__version__, sections=sections,
        legend=legend)


def pdf(derivation) -> bytes:
    """The standalone document compiled by pdflatex."""
    pdflatex = shutil.which("pdflatex")
    if pdflatex is None:
        raise PdfLatexMissing("pdflatex not found: install it, e.g. on Debian: apt-get install "
                              "texlive-latex-base texlive-latex-recommended")
    with tempfile.TemporaryDirectory(prefix="symrnn-") as tmp:
        source = Path(tmp) / f"{derivation.cell.name}.tex"
        source.write_text(document(derivation, "latex", standalone=True), encoding="utf-8")
        run = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error",
                              source.name], cwd=tmp, capture_output=True, text=True)
        if run.returncode != 0:
            tail = "\n".join(run.stdout.splitlines()[-15:])
            raise RuntimeError(f"pdflatex failed on the {derivation.cell.name} derivation:\n{tail}")
        return source.with_suffix(".pdf").read_bytes()
