"""The cell IR: validation errors, and a derivation that follows the forward equations."""

import subprocess
import sys

import pytest
import sympy as sp

import symrnn
from symrnn.activations import sigmoid, tanh
from symrnn.cell import CellBuilder, CellError
from symrnn.symbols import sym


def _rnn_like(name="c1", states=("a",)):
    cell = CellBuilder(name, states=states)
    return cell, cell.prev(states[0]), cell.x


def _build_error(make):
    with pytest.raises(CellError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unknown_symbol():
    def make():
        cell, a_prev, x = _rnn_like()
        z = cell.affine("W", [a_prev, x], "b")
        cell.let("a", tanh(z) + sym("nowhere"))
        return cell.build()
    assert "unknown symbol 'nowhere'" in _build_error(make)


def test_state_never_updated():
    def make():
        cell, a_prev, x = _rnn_like(states=("a", "c"))
        cell.let("a", tanh(cell.affine("W", [a_prev, x], "b")))
        return cell.build()
    assert "state 'c' is never updated" in _build_error(make)


def test_cycle_within_a_step():
    def make():
        cell, a_prev, x = _rnn_like()
        z = cell.affine("W", [a_prev, x], "b")
        cell.let("g", sigmoid(z) * sym("h"))
        cell.let("h", tanh(sym("g")))
        cell.let("a", sym("h"))
        return cell.build()
    message = _build_error(make)
    assert "cyclic" in message and "g" in message and "h" in message


def test_x_used_elementwise_requires_d_equal_h():
    cell, a_prev, x = _rnn_like()
    cell.let("a", tanh(cell.affine("W", [a_prev, x], "b")) + x)
    built = cell.build()
    assert built.requires == (("D", "H", "the equation of a"),)
    assert built.size(x) == "D" and built.size(sym("a")) == "H"


def test_two_sizes_in_one_equation():
    def make():
        cell = CellBuilder("bad", states=("a", "c"), sizes={"a": "P"})
        a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
        c = cell.let("c", tanh(cell.affine("W", [a_prev, x], "b")) * c_prev)
        cell.let("a", sigmoid(c))
        return cell.build()
    message = _build_error(make)
    assert "the equation of a combines vectors of size" in message
    assert "H" in message and "P" in message


@pytest.mark.parametrize("bad", ["lambda", "np", "params", "2x", "a-b", "_hidden"])
def test_bad_names(bad):
    def make():
        cell, a_prev, x = _rnn_like()
        g = cell.let(bad, sigmoid(cell.affine("W", [a_prev, x], "b")))
        cell.let("a", g * a_prev)
        return cell.build()
    assert repr(bad) in _build_error(make)


def test_duplicate_name():
    def make():
        cell, a_prev, x = _rnn_like()
        cell.let("g", sigmoid(cell.affine("W", [a_prev, x], "b")))
        cell.let("g", tanh(cell.affine("V", [a_prev, x], "c")))
        cell.let("a", sym("g"))
        return cell.build()
    assert "declared twice" in _build_error(make)


def test_unsupported_function():
    def make():
        cell, a_prev, x = _rnn_like()
        cell.let("a", sp.tan(cell.affine("W", [a_prev, x], "b")))
        return cell.build()
    message = _build_error(make)
    assert "unsupported function 'tan'" in message and "sigmoid" in message
    assert "exp" in message and "layer_norm" in message


def test_unused_parameter_vector():
    def make():
        cell, a_prev, x = _rnn_like()
        cell.param("p")
        cell.let("a", tanh(cell.affine("W", [a_prev, x], "b")))
        return cell.build()
    assert "parameter 'p' is declared but never used" in _build_error(make)


def test_generated_name_collision():
    """A node named like a derived quantity (dz_f is the gradient of z_f) is refused."""
    cell, a_prev, x = _rnn_like()
    z = cell.affine("W_f", [a_prev, x], "b_f")
    clash = cell.let("dz_f", sigmoid(z))
    cell.let("a", clash * a_prev)
    with pytest.raises(CellError, match="dz_f"):
        symrnn.generate_source(cell.build())


def test_derivatives_are_written_in_gate_values():
    """sigmoid' and tanh' come out in terms of the cached outputs, not of exponentials."""
    derivation = symrnn.derive("lstm")
    by_name = {a.out.name: a.expr for a in derivation.backward}
    Gamma_f, dGamma_f = sym("Gamma_f"), sym("dGamma_f")
    assert sp.expand(by_name["dz_f"] - Gamma_f * (1 - Gamma_f) * dGamma_f) == 0
    tanh_c, dtanh_c, dc_next = sym("tanh_c"), sym("dtanh_c"), sym("dc_next")
    assert sp.expand(by_name["dc"] - (dc_next + (1 - tanh_c**2) * dtanh_c)) == 0
    for expr in by_name.values():
        assert not expr.atoms(sp.exp) and not expr.atoms(sp.Function) - expr.atoms(sp.Indexed)


def test_changing_a_forward_equation_changes_the_backward():
    """No gradient is written by hand: an LSTM whose output skips tanh(c) derives dc differently."""
    def lstm_variant(squash):
        cell = CellBuilder("variant", states=("a", "c"))
        a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
        f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f")))
        o = cell.let("Gamma_o", sigmoid(cell.affine("W_o", [a_prev, x], "b_o")))
        c = cell.let("c", f * c_prev + tanh(cell.affine("W_c", [a_prev, x], "b_c")))
        cell.let("a", o * (tanh(c) if squash else c))
        return cell.build()
    dc = {squash: {a.out.name: a.expr for a in symrnn.derive(lstm_variant(squash)).backward}["dc"]
          for squash in (True, False)}
    assert sym("tanh_c") in dc[True].free_symbols
    assert sp.expand(dc[False] - (sym("dc_next") + sym("Gamma_o") * sym("da"))) == 0


BROKEN = {
    "cycle": ('g = cell.let("g", sigmoid(cell.affine("W", [a_prev, x], "b")) * sym("h"))\n'
              '    cell.let("h", tanh(g))\n    cell.let("a", sym("h"))', "cyclic dependency"),
    "undeclared input": ('cell.input("dt")', "'dt' is not an input"),
    "keyword": ('cell.let("lambda", tanh(cell.affine("W", [a_prev, x], "b")))\n'
                '    cell.let("a", sym("lambda"))', "'lambda' is not a Python identifier"),
    "unknown function": ('cell.let("a", sp.tan(cell.affine("W", [a_prev, x], "b")))',
                         "unsupported function 'tan'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_cli_reports_a_broken_user_cell_in_one_line(tmp_path, case):
    body, expected = BROKEN[case]
    (tmp_path / "broken.py").write_text(
        "import sympy as sp\nfrom symrnn.activations import sigmoid, tanh\n"
        "from symrnn.cell import CellBuilder\nfrom symrnn.symbols import sym\n\n\n"
        "def build():\n    cell = CellBuilder('broken', states=('a',))\n"
        f"    a_prev, x = cell.prev('a'), cell.x\n    {body}\n    return cell.build()\n")
    for command in ("generate", "derive", "verify"):
        run = subprocess.run([sys.executable, "-m", "symrnn", command, "broken.py:build"],
                             cwd=tmp_path, capture_output=True, text=True)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
        assert len(run.stderr.strip().splitlines()) == 1 and expected in run.stderr
    assert not (tmp_path / "generated").exists()


@pytest.mark.parametrize("doc", ['x"""\nimport os; os.system("touch /tmp/x")\n"""',
                                 "a\\nb", "\x00"])
def test_a_doc_cannot_escape_the_docstring(doc):
    cell = CellBuilder("c1", states=("a",), doc=doc)
    cell.let("a", tanh(cell.affine("W", [cell.prev("a"), cell.x], "b")))
    with pytest.raises(CellError, match="doc may not contain"):
        cell.build()


def test_a_strange_origin_stays_one_comment_line():
    source = symrnn.generate_source("rnn", origin="evil.py\nimport os")
    assert source.splitlines()[1] == "# Regenerate with: symrnn generate 'evil.py\\nimport os'"
