"""Derivations a person can read: LaTeX that compiles, seed names only, Markdown for Jupyter,
Unicode text, and `symrnn verify` that passes on the built-in cells and fails on a wrong rule."""

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sympy as sp
from conftest import CUSTOM_CELLS

import symrnn
from symrnn.cells import BUILTINS
from symrnn.document import document, pdf
from symrnn.notation import sized
from symrnn.spec import load_spec, parse_spec
from symrnn.verify import verify

needs_pdflatex = pytest.mark.skipif(
    shutil.which("pdflatex") is None and not os.environ.get("CI"),
    reason="pdflatex is not installed here (.ci/run installs texlive-latex-base and "
           "texlive-latex-recommended, and CI never skips this)")

CODE_NAMES = re.compile(r"Gamma_[a-z]|_prev|_tilde|\bd[A-Z]|\bdz_|\bda\b|\bdc\b|_seq|sigmoid")


def _symrnn(*args, cwd, env=None):
    return subprocess.run([sys.executable, "-m", "symrnn", *args], cwd=cwd, env=env,
                          capture_output=True, text=True)


@needs_pdflatex
@pytest.mark.parametrize("name", list(BUILTINS))
def test_standalone_document_compiles(name):
    data = pdf(symrnn.derive(name))
    assert data.startswith(b"%PDF")
    pages = re.search(rb"/Type\s*/Pages\b.*?/Count\s+(\d+)", data, re.S)
    assert pages is not None
    if name in ("rnn", "gru", "lstm"):
        assert int(pages.group(1)) == 1, "the derivation does not fit one page"


@needs_pdflatex
def test_user_cells_compile_too():
    """Peephole vectors, made nodes and single-vector affine maps print as valid LaTeX."""
    for build in CUSTOM_CELLS.values():
        assert pdf(symrnn.derive(build())).startswith(b"%PDF")


@needs_pdflatex
@pytest.mark.parametrize("name", ["lstm", "lstmp", "gru_d"])
def test_markdown_math_compiles(tmp_path, name):
    """Every $$ block of the Markdown is valid amsmath (what MathJax in Jupyter renders)."""
    markdown = symrnn.derive(name)._repr_markdown_()
    blocks = re.findall(r"\$\$\n(.*?)\n\$\$", markdown, re.S)
    assert len(blocks) == 3 and all(r"\begin{aligned}" in b for b in blocks)
    inline = re.findall(r"(?<!\$)\$([^$\n]+)\$(?!\$)", markdown)
    assert inline, "the notation legend has inline math"
    body = "\n".join([rf"\[{b}\]" for b in blocks] + [f"${m}$\n" for m in inline])
    (tmp_path / "md.tex").write_text("\\documentclass{article}\\usepackage{amsmath,amssymb}\n"
                                     f"\\begin{{document}}\n{body}\n\\end{{document}}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "md.tex"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-2000:]


@pytest.mark.parametrize("name", list(BUILTINS))
def test_latex_uses_seed_names_only(name):
    source = document(symrnn.derive(name), "latex", standalone=True)
    equations = "\n".join(line for line in source.splitlines() if "&=" in line)
    assert equations and not CODE_NAMES.findall(equations), CODE_NAMES.findall(equations)
    assert r"\langle t \rangle" in equations and r"\langle t-1 \rangle" in equations
    assert "e^" not in equations  # an exponential is \exp(...), as a paper writes it
    uses_exp = any(n.expr.atoms(sp.exp) for n in symrnn.get_cell(name).nodes
                   if hasattr(n, "expr"))
    assert (r"\exp\left(" in equations) == uses_exp  # activations' derivatives need none


def test_lstm_latex_is_the_seeds_notation():
    latex = symrnn.derive("lstm").latex()
    t = r"^{\langle t \rangle}"
    for piece in [
        r"\Gamma_{f}" + t + r" &= \sigma\left(W_{f} \left[a^{\langle t-1 \rangle}, x" + t,
        r"c" + t + r" &= \Gamma_{f}" + t + r" \odot c^{\langle t-1 \rangle} + \Gamma_{u}" + t
        + r" \odot \tilde{c}" + t,
        r"\Gamma_{o}" + t + r" \odot \left(1 - \Gamma_{o}" + t + r"\right)",
        r"1 - \tanh^{2}\left(c" + t + r"\right)",
        r"\delta_{t+1} a" + t,
        r"\delta_{t} c^{\langle t-1 \rangle} &= \delta c" + t + r" \odot \Gamma_{f}" + t,
        r"\partial \mathcal{L} / \partial W_{f} &= \sum\nolimits_{t} \delta z_{f}" + t
        + r" \left[a^{\langle t-1 \rangle}; x" + t + r"\right]^{\top}",
    ]:
        assert piece in latex, piece


def test_jupyter_reprs_and_text():
    derivation = symrnn.derive("gru")
    assert derivation._repr_markdown_() == derivation.markdown()
    latex = derivation._repr_latex_()
    assert latex.startswith("$$\\begin{aligned}") and latex.endswith("\\end{aligned}$$")
    assert latex.count("{") == latex.count("}")
    text = derivation.text()
    assert "c̃⟨t⟩ = tanh(W_c [Γ_r⟨t⟩ ⊙ a⟨t−1⟩, x⟨t⟩] + b_c)" in text
    assert "δₜ a⟨t−1⟩" in text and "∂ℒ/∂W_c" in text


@pytest.mark.parametrize("name", list(BUILTINS))
def test_verify_passes_for_builtin_cells(name):
    checks = verify(symrnn.derive(name), steps=2)
    cell = symrnn.get_cell(name)
    quantities = [*cell.params, *(f"{v}<{t}>" for v in cell.inputs for t in (1, 2)),
                  *(f"{s}<0>" for s in cell.states)]
    assert [c.quantity for c in checks] == quantities  # one per array, input step, state
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


def _corrupt(derivation, name, change):
    backward = tuple(dataclasses.replace(a, expr=change(a.expr)) if a.out.name == name else a
                     for a in derivation.backward)
    return dataclasses.replace(derivation, backward=backward)


def test_verify_fails_for_a_wrong_backward_rule():
    lstm = symrnn.derive("lstm")
    # sigmoid' taken as sigma instead of sigma (1 - sigma), for the forget gate only
    wrong = _corrupt(lstm, "dz_f", lambda e: e.xreplace({1 - sp.Symbol("Gamma_f"): 1}))
    checks = {c.quantity: c for c in verify(wrong)}
    assert not checks["W_f"].ok and not checks["b_f"].ok
    assert checks["W_f"].detail.startswith("worst entry W_f[")
    # tanh'(c) dropped from the path through a = Gamma_o tanh(c)
    wrong = _corrupt(lstm, "dc", lambda e: sp.Symbol("dc_next") + sp.Symbol("dtanh_c"))
    assert not {c.quantity: c for c in verify(wrong)}["W_f"].ok


def test_verify_cli(tmp_path):
    ok = _symrnn("verify", "rnn", "--steps", "3", cwd=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "6 of 6 quantities agree" in ok.stdout and "x<3>" in ok.stdout


def test_derive_cli_formats_and_files(tmp_path):
    text = _symrnn("derive", "lstm", "--format", "text", cwd=tmp_path)
    assert text.returncode == 0 and "Γ_f⟨t⟩ = σ(W_f [a⟨t−1⟩, x⟨t⟩] + b_f)" in text.stdout
    written = _symrnn("derive", "lstm", "--standalone", "-o", "lstm.tex", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert (tmp_path / "lstm.tex").read_text().count(r"\begin{align*}") == 3
    mine = tmp_path / "notes.tex"
    mine.write_text("my own notes\n")
    refused = _symrnn("derive", "lstm", "-o", "notes.tex", cwd=tmp_path)
    assert refused.returncode == 2 and "--force" in refused.stderr
    assert "Traceback" not in refused.stderr and mine.read_text() == "my own notes\n"
    forced = _symrnn("derive", "lstm", "-o", "notes.tex", "--force", cwd=tmp_path)
    assert forced.returncode == 0 and r"\Gamma_{f}" in mine.read_text()


def test_pdf_without_pdflatex_says_what_to_install(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path)}  # no pdflatex on this PATH
    run = _symrnn("derive", "lstm", "--pdf", cwd=tmp_path, env=env)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "texlive-latex-base" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "lstm.pdf").exists()


# --------------------------------------------------------------------------------------------
# Cells of several sizes and inputs (issue 14): the sizes stated, every input's gradient
# --------------------------------------------------------------------------------------------

SPECS = Path(__file__).parent / "specs"

# lstmp's output and recurrent state a projected to P units, with a layer norm over those P units
# and a mean over the H units of c
LNP = """name = "lnp"
states = ["a", "c"]
sizes = { a = "P" }
equations = [
  "Gamma_f = sigmoid(W_f[a_prev, x] + b_f)",
  "c = Gamma_f * c_prev + (1 - Gamma_f) * tanh(W_c[a_prev, x] + b_c)",
  "h = Gamma_f * tanh(c) + mean(c)",
  "a = layer_norm(W_p[h])",
]
"""


def _legend(text):
    return " ".join(text.split("\nNotation\n")[1].split())


def test_only_cells_of_several_sizes_or_inputs_state_their_sizes():
    """Every other cell prints as before (docs/*.md are checked byte for byte elsewhere)."""
    assert [name for name in BUILTINS if sized(symrnn.get_cell(name))] == ["lstmp", "gru_d"]
    assert [name for name, build in CUSTOM_CELLS.items() if sized(build())] == []
    for name in ("lstm", "lstm_ln"):
        assert "Sizes" not in symrnn.derive(name).text()
    assert sized(load_spec(SPECS / "highway.toml")) and sized(parse_spec(LNP))


def test_lstmp_legend_states_the_sizes():
    text = symrnn.derive("lstmp").text()
    assert "    a⟨t⟩ = W_p h⟨t⟩\n" in text and "    δ h⟨t⟩ = W_pᵀ δ z_p⟨t⟩\n" in text
    assert ("Sizes (numbers of units): a⟨t⟩, a⟨t−1⟩ and z_p⟨t⟩ have P, x⟨t⟩ has D and every "
            "other vector has H. A gradient δ v⟨t⟩ has the size of v, and a weight W_k a row for "
            "each unit of z_k⟨t⟩ and a column for each unit of the vectors it reads."
            ) in _legend(text)
    latex = symrnn.derive("lstmp").markdown()
    assert (r"$a^{\langle t \rangle}$, $a^{\langle t-1 \rangle}$ and $z_{p}^{\langle t \rangle}$ "
            r"have $P$, $x^{\langle t \rangle}$ has $D$ and every other vector has $H$") in latex


def test_gru_d_prints_its_second_input_and_its_gradient():
    text = symrnn.derive("gru_d").text()
    for row in ["z_d⟨t⟩ = b_d + w_d ⊙ dt⟨t⟩", "γ⟨t⟩ = exp(-relu(z_d⟨t⟩))",
                "δ dt⟨t⟩ = Σ_{j=1..H} [δ z_d⟨t⟩ ⊙ w_d]_j",
                "δ x⟨t⟩ = W_c[x]ᵀ δ z_c⟨t⟩ + W_r[x]ᵀ δ z_r⟨t⟩ + W_u[x]ᵀ δ z_u⟨t⟩",
                "∂ℒ/∂w_d = Σ_t δ z_d⟨t⟩ ⊙ dt⟨t⟩",
                "δ Γ_r⟨t⟩ = a_dec⟨t⟩ ⊙ (W_c[a]ᵀ δ z_c⟨t⟩)"]:  # a block, not a code name
        assert f"    {row}\n" in text, row
    legend = _legend(text)
    assert legend.startswith("- x⟨t⟩ and dt⟨t⟩ are the inputs at step t, a⟨t⟩ the state a")
    assert ("Sizes (numbers of units): x⟨t⟩ has D and every other vector has H; dt⟨t⟩ is one "
            "number per sample, which broadcasts over the units where a vector expression reads "
            "it.") in legend
    assert "- Σ_{j=1..H} [v⟨t⟩]_j is the sum of a vector v over its H units." in legend
    assert "Γ_r_a_dec" not in text and "Gamma" not in text
    latex = symrnn.derive("gru_d").latex()
    assert (r"\delta dt^{\langle t \rangle} &= \sum_{j=1}^{H} \left[\delta z_{d}^{\langle t "
            r"\rangle} \odot w_{d}\right]_{j}") in latex
    assert symrnn.derive("gru_d").text().count("δ dt⟨t⟩ =") == 1  # one row, as δ x⟨t⟩ has


def test_highway_states_its_requirement():
    derivation = symrnn.derive(load_spec(SPECS / "highway.toml"))
    legend = _legend(derivation.text())
    assert "- The cell needs D = H: x⟨t⟩ is read elementwise with vectors of H units." in legend
    assert "    a⟨t⟩ = Γ_r⟨t⟩ ⊙ c̃⟨t⟩ + x⟨t⟩ ⊙ (1 - Γ_r⟨t⟩)\n" in derivation.text()
    assert "    δ x⟨t⟩ = δ a⟨t⟩ ⊙ (1 - Γ_r⟨t⟩) + W_c[x]ᵀ δ z_c⟨t⟩ + W_r[x]ᵀ δ z_r⟨t⟩\n" in (
        derivation.text())
    assert "The cell needs $D$ = $H$" in derivation.markdown()


def test_a_mean_of_p_units_prints_one_over_p():
    derivation = symrnn.derive(parse_spec(LNP))
    text = derivation.text()
    for row in ["μ_p⟨t⟩ = (1/P) Σ_{j=1..P} [z_p⟨t⟩]_j",
                "h⟨t⟩ = (1/H) Σ_{j=1..H} [c⟨t⟩]_j + Γ_f⟨t⟩ ⊙ tanh(c⟨t⟩)",
                "δ μ_p⟨t⟩ = -Σ_{j=1..P} [δ z\u0302_p⟨t⟩]_j / σ_p⟨t⟩",
                "δ z_p⟨t⟩ = δ z\u0302_p⟨t⟩ / σ_p⟨t⟩ + δ μ_p⟨t⟩ / P "
                "+ δ σ_p⟨t⟩ ⊙ (-2 μ_p⟨t⟩ + 2 z_p⟨t⟩) / (2 P σ_p⟨t⟩)",
                "δ c⟨t⟩ = δₜ₊₁ c⟨t⟩ + δ h⟨t⟩ ⊙ Γ_f⟨t⟩ ⊙ (1 - tanh²(c⟨t⟩)) + Σ_{j=1..H} [δ h⟨t⟩]_j "
                "/ H"]:
        assert f"    {row}\n" in text, row
    assert "σ_p⟨t⟩ = sqrt(1/100000 + (1/P) Σ_{j=1..P} [(-μ_p⟨t⟩ + z_p⟨t⟩)²]_j)" in text
    assert ("(1/H) Σ_{j=1..H} [v⟨t⟩]_j is the mean of a vector v of H units and Σ_{j=1..H} "
            "[v⟨t⟩]_j their sum (and likewise over P units)") in _legend(text)
    assert "μ_p⟨t⟩ and σ_p⟨t⟩ are each one number per sample" in _legend(text)
    latex = derivation.latex()
    assert (r"\mu_{p}^{\langle t \rangle} &= \frac{1}{P} \sum_{j=1}^{P} \left[z_{p}^{\langle t "
            r"\rangle}\right]_{j}") in latex
    assert r"\frac{\delta \mu_{p}^{\langle t \rangle}}{P}" in latex
    assert r"{2 P \sigma_{p}^{\langle t \rangle}}" in latex


@needs_pdflatex
def test_cells_of_several_sizes_compile():
    for cell in (load_spec(SPECS / "highway.toml"), parse_spec(LNP)):
        assert pdf(symrnn.derive(cell)).startswith(b"%PDF")
