"""The derivation as a document: LaTeX, Markdown, Unicode text, a standalone .tex, a PDF."""

import shutil
import subprocess
import tempfile
from pathlib import Path

from . import __version__
from .display import parts
from .render import GENERATED_BY, environment

FORMATS = ("latex", "markdown", "text")


class PdfLatexMissing(RuntimeError):
    pass


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
