"""generated/ at the repo root is exactly what `symrnn generate --all` writes today."""

import subprocess
import sys
from pathlib import Path

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
