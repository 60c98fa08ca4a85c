"""docs/derivations.ipynb: executed as a person would run it, and the committed file checked.

The notebook is committed with its outputs, so what GitHub or Jupyter shows is what it computes.
After a change to symrnn that changes a derivation's rendering, refresh it (from the repository
root, with ``pip install -e '.[test]'``):

    python docs/run_notebook.py

That executes it with a kernel on the running interpreter (a kernel spec written to a temporary
directory, nothing installed) and writes it back in place; this test executes it the same way.
Outputs are not compared byte for byte (execution metadata and the last digits of finite
differences may vary): the checks are on what they mean, the rendered derivations of each cell
exactly and the finite-difference errors below 1e-6.
"""

import importlib.util
import re

import nbformat
import pytest
from conftest import FD_TOL, ROOT

import symrnn

NOTEBOOK = ROOT / "docs" / "derivations.ipynb"
CELLS = ("lstm", "lstm_ln", "slstm")


def _runner():
    spec = importlib.util.spec_from_file_location("run_notebook", ROOT / "docs" / "run_notebook.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def executed():
    return _runner().execute(NOTEBOOK, timeout=120)


@pytest.fixture(scope="module")
def committed():
    return nbformat.read(NOTEBOOK, as_version=4)


def _outputs(nb, output_type):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
            if o.output_type in output_type]


def _stdout(nb):
    return "".join(o.text for o in _outputs(nb, ("stream",)) if o.name == "stdout")


def check_meaning(nb):
    """What a person reading ``nb`` must see: no errors, every derivation rendered as symrnn
    renders it now, gradient checks of every cell within FD_TOL."""
    assert not _outputs(nb, ("error",)), [o.ename for o in _outputs(nb, ("error",))]
    rich = [o.data for o in _outputs(nb, ("execute_result", "display_data"))]
    for name in CELLS:
        derivation = symrnn.derive(name)
        shown = [d for d in rich if d.get("text/markdown") == derivation.markdown()]
        assert shown, (f"no output shows the current derivation of {name!r}; refresh the notebook: "
                       f"python docs/run_notebook.py")
        assert shown[0].get("text/latex") == derivation._repr_latex_(), name
        assert "\\begin{aligned}" in shown[0]["text/latex"]

    out = _stdout(nb)
    worst = dict(re.findall(r"^(\w+): worst relative error (\S+)$", out, re.M))
    assert set(worst) == set(CELLS), worst
    for name, err in worst.items():
        assert float(err) < FD_TOL, (name, err)
    entries = [float(e) for e in re.findall(r" rel err (\S+)$", out, re.M)]
    # two entries of every parameter, of x and of every state, per cell
    expected = sum(2 * (len(m.PARAMS) + 1 + len(m.STATES))
                   for m in (symrnn.load(name) for name in CELLS))
    assert len(entries) == expected, (len(entries), expected)
    assert max(entries) < FD_TOL
    assert "stabilised h finite: True" in out
    assert re.search(r"unstabilised h has [1-9]\d* NaN", out)


def test_notebook_executes(executed):
    check_meaning(executed)


def test_committed_notebook_has_its_outputs(committed):
    code = [c for c in committed.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), (
        f"docs/derivations.ipynb is not (fully) executed: {counts}; python docs/run_notebook.py")
    assert committed.cells[0].cell_type == "markdown"
    assert "python docs/run_notebook.py" in committed.cells[0].source
    check_meaning(committed)


def test_committed_matches_execution(committed, executed):
    """The same rich outputs (the displayed derivations), cell by cell, committed and executed."""
    for mine, fresh in zip(committed.cells, executed.cells, strict=True):
        if mine.cell_type != "code":
            continue
        keep = ("text/markdown", "text/latex")
        assert ([{k: o.data.get(k) for k in keep} for o in mine.outputs if "data" in o]
                == [{k: o.data.get(k) for k in keep} for o in fresh.outputs if "data" in o])
