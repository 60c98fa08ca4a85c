"""generated/ at the repo root is exactly what `symrnn generate --all` writes today."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import CUSTOM_CELLS, get_cell

import symrnn
from symrnn.cells import BUILTINS

ROOT = Path(__file__).resolve().parent.parent


def test_committed_modules_match_a_fresh_generation():
    for name in BUILTINS:
        committed = (ROOT / "generated" / f"{name}.py").read_text(encoding="utf-8")
        assert committed == symrnn.generate_source(name), (
            f"generated/{name}.py drifted: run `symrnn generate --all` at the repo root")


def test_committed_numba_modules_match_a_fresh_generation():
    for name in BUILTINS:
        committed = (ROOT / "generated" / f"{name}_numba.py").read_text(encoding="utf-8")
        assert committed == symrnn.generate_source(name, "numba"), (
            f"generated/{name}_numba.py drifted: run `symrnn generate --all --backend numba`")


def test_generate_all_check_passes_at_the_repo_root():
    proc = subprocess.run([sys.executable, "-m", "symrnn", "generate", "--all", "--check"],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_committed_modules_import_and_run():
    """The committed files themselves (not fresh ones) work as a package."""
    code = ("import numpy as np\n"
            "from generated import lstm\n"
            "p = lstm.init_params(3, 4, rng=0)\n"
            "y, s, cache = lstm.forward(p, np.ones((2, 1, 3)))\n"
            "grads, dx, ds0 = lstm.backward(p, cache, np.ones_like(y))\n"
            "print(lstm.__file__, y.shape, dx.shape)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert str(ROOT / "generated" / "lstm.py") in proc.stdout
    assert "(2, 1, 4) (2, 1, 3)" in proc.stdout


def test_committed_derivations_in_docs_are_fresh():
    """docs/ shows the derivations as `symrnn derive` prints them today."""
    from symrnn.document import document

    for name in BUILTINS:
        committed = (ROOT / "docs" / f"{name}.md").read_text(encoding="utf-8")
        assert committed == document(symrnn.derive(name), "markdown"), (
            f"docs/{name}.md drifted: run `symrnn derive {name} --format markdown "
            f"-o docs/{name}.md`")
    committed = (ROOT / "docs" / "lstm.tex").read_text(encoding="utf-8")
    assert committed == document(symrnn.derive("lstm"), "latex", standalone=True)


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("name", [*BUILTINS, *CUSTOM_CELLS])
def test_every_equation_of_the_derivation_is_a_comment_in_the_module(name, backend):
    """Each row of the text derivation's forward and backward (what `symrnn derive --format text`
    prints) is a comment in the generated step code, once, in the time loops' bodies."""
    from symrnn.display import parts

    cell = get_cell(name)
    sections, _ = parts(symrnn.derive(cell), "text")
    source = symrnn.generate_source(cell, backend)
    comments = [line.strip()[2:] for line in source.splitlines()
                if line.startswith("        ") and line.strip().startswith("# ")]
    for _, rows in sections[:2]:
        for lhs, rhs in rows:
            equation = f"{lhs} = {rhs}"
            found = [c for c in comments if c == equation or c.startswith(equation + ", ")]
            assert len(found) == 1, f"{name} {backend}: {equation!r} is a comment {len(found)}x"
