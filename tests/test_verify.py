"""`symrnn.verify`: central differences at 60 digits on 3 units and 2 inputs against the derived
backward. It passes on correct cells (built-in, SymPy's functions, reductions over the units) and
fails, naming the quantity, on a corrupted activation derivative or a corrupted reduction."""

import dataclasses

import pytest
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

import symrnn
from symrnn.activations import elu, sigmoid, silu, softplus, tanh
from symrnn.cell import CellBuilder, Elementwise
from symrnn.cells import BUILTINS
from symrnn.reductions import UNITS, mean, unitsum
from symrnn.spec import parse_spec
from symrnn.symbols import sym
from symrnn.verify import NotDefined, verify

BUG2 = """
name = "bug2"
states = ["a", "c"]
params = ["p_0"]
equations = ["g_0 = (sigmoid(W_1[x] + b_1)) - 3 * c_prev", "a = p_0 * c_prev + a_prev",
             "c = softsign(W_4[x, g_0] + b_4) + a_prev"]
"""

# f(z, a_prev), added to a = tanh(W_a [a_prev, x] + b_a): each defined for every real argument
FUNCTIONS = {
    "exp": lambda z, a: sp.exp(z),
    "log": lambda z, a: sp.log(1 + z**2),
    "log1p": lambda z, a: log1p(z**2),
    "expm1": lambda z, a: expm1(z),
    "sqrt": lambda z, a: sp.sqrt(1 + z**2),
    "abs": lambda z, a: sp.Abs(z),
    "max": lambda z, a: sp.Max(z, a),
    "min": lambda z, a: sp.Min(z, 0),
    "sin": lambda z, a: sp.sin(z),
    "cos": lambda z, a: sp.cos(z),
    "power": lambda z, a: (1 + sigmoid(z)) ** sp.Rational(3, 2),
    "division": lambda z, a: z / (2 + sp.cos(a)),
    "softplus": lambda z, a: softplus(z),
    "silu": lambda z, a: silu(z),
    "elu": lambda z, a: elu(z),
}


def _with(name, f):
    cell = CellBuilder(f"with_{name}", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    z = cell.affine("W_g", [a_prev, x], "b_g")
    cell.let("a", tanh(cell.affine("W_a", [a_prev, x], "b_a")) + f(z, a_prev) / 2)
    return cell.build()


def _layer_norm():
    """a = tanh(g_a layer_norm(W_a [a_prev, x])): mean, variance, sqrt over the units."""
    cell = CellBuilder("ln", states=("a",))
    z = cell.affine("W_a", [cell.prev("a"), cell.x])
    cell.let("a", tanh(cell.param("g_a") * cell.layer_norm(z)))
    return cell.build()


def _three_gates():
    """An LSTM whose three gates are normalised together: one mean and one variance over the
    three pre-activations, each from `mean` of every gate."""
    cell = CellBuilder("norm3", states=("a", "c"))
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    z = [cell.affine(f"W_{k}", [a_prev, x], f"b_{k}") for k in "fuo"]
    mu = cell.let("mu", sum(cell.mean(v) for v in z) / 3)
    var = cell.let("var", sum(cell.mean((v - mu) ** 2) for v in z) / 3)
    s = cell.let("s", sp.sqrt(var + sp.Rational(1, 100000)))
    f, u, o = (sigmoid(cell.param(f"g_{k}") * (v - mu) / s) for k, v in zip("fuo", z, strict=True))
    c = cell.let("c", f * c_prev + u * tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    cell.let("a", o * tanh(c))
    return cell.build()


CELLS = {"bug2": lambda: parse_spec(BUG2), "layer_norm": _layer_norm, "three_gates": _three_gates,
         **{name: (lambda name=name, f=f: _with(name, f)) for name, f in FUNCTIONS.items()}}


def _assert_passes(cell, **options):
    checks = verify(symrnn.derive(cell), **options)
    quantities = [*cell.params, *(f"x<{t + 1}>" for t in range(options.get("steps", 2))),
                  *(f"{s}<0>" for s in cell.states)]
    assert [c.quantity for c in checks] == quantities
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


@pytest.mark.parametrize("name", list(BUILTINS))
def test_passes_for_builtin_cells(name):
    _assert_passes(symrnn.get_cell(name))


@pytest.mark.parametrize("name", list(CELLS))
def test_passes_for_functions_and_reductions(name):
    _assert_passes(CELLS[name]())


def test_other_sizes_steps_and_seeds():
    _assert_passes(_layer_norm(), steps=3, points=2, seed=7, units=2, inputs=3)
    _assert_passes(symrnn.get_cell("gru"), steps=1, units=1, inputs=1)


def test_deterministic():
    derivation = symrnn.derive(_three_gates())
    assert verify(derivation) == verify(derivation)


def _corrupt(derivation, name, change):
    backward = tuple(dataclasses.replace(a, expr=change(a.expr)) if a.out.name == name else a
                     for a in derivation.backward)
    assert backward != derivation.backward, f"nothing to corrupt in {name}"
    return dataclasses.replace(derivation, backward=backward)


@pytest.mark.parametrize("wrong_units", [UNITS + 1, sp.S.One])
def test_fails_for_a_wrong_mean_adjoint(wrong_units):
    """dz_a = ... + dmu_a/H: the mean's adjoint with H + 1 (or 1) instead of H."""
    wrong = _corrupt(symrnn.derive(_layer_norm()), "dz_a",
                     lambda e: e.xreplace({UNITS: wrong_units}))
    checks = {c.quantity: c for c in verify(wrong)}
    assert not checks["W_a"].ok and checks["W_a"].detail.startswith("worst entry W_a[")
    assert not checks["x<1>"].ok and not checks["a<0>"].ok


def _read_by_means(cell):
    """The vectors the cell's means read, in the cell's order."""
    return [n.expr.args[0] for n in cell.nodes
            if isinstance(n, Elementwise) and isinstance(n.expr, mean)]


def test_fails_for_a_wrong_variance_adjoint():
    """In the three-gate cell, one of the variance's three means sends its adjoint without / H."""
    derivation = symrnn.derive(_three_gates())
    (squares, *_) = (v for v in _read_by_means(derivation.cell) if not v.name.startswith("z_"))
    wrong = _corrupt(derivation, f"d{squares.name}", lambda e: e.xreplace({UNITS: 1}))
    failed = {c.quantity for c in verify(wrong) if not c.ok}
    assert {"W_f", "W_u", "W_o", "x<1>", "a<0>"} <= failed


def test_a_dropped_unitsum_is_a_failed_check():
    """The mean's adjoint with unitsum(e) replaced by e: an H-vector where a per-sample scalar
    belongs."""
    derivation = symrnn.derive(_layer_norm())
    (mu,) = (n.out for n in derivation.cell.nodes
             if isinstance(n, Elementwise) and n.expr == mean(sym("z_a")))
    wrong = _corrupt(derivation, f"d{mu.name}",
                     lambda e: e.replace(lambda u: isinstance(u, unitsum), lambda u: u.args[0]))
    checks = verify(wrong)
    assert checks and not any(c.ok for c in checks)
    assert f"d{mu.name} is a vector of 3 entries" in checks[0].detail


def test_a_unitsum_of_the_wrong_gate_fails():
    """ds sums the three gates' contributions (s: the shared standard deviation): one gate's
    counted twice, another's dropped."""
    derivation = symrnn.derive(_three_gates())
    (ds,) = (a for a in derivation.backward if a.out.name == "ds")
    first, second, _ = ds.expr.args
    wrong = _corrupt(derivation, "ds", lambda e: e - second + first)
    assert not all(c.ok for c in verify(wrong))


def test_fails_for_a_wrong_kink_derivative():
    """|z|' taken as 1 instead of sign(z)."""
    wrong = _corrupt(symrnn.derive(CELLS["abs"]()), "dz_g",
                     lambda e: e.replace(lambda u: isinstance(u, sp.sign), lambda u: sp.S.One))
    checks = {c.quantity: c for c in verify(wrong)}
    assert not checks["W_g"].ok and not checks["b_g"].ok


def test_a_cell_never_real_is_reported():
    cell = CellBuilder("complex", states=("a",))
    z = cell.affine("W_a", [cell.prev("a"), cell.x], "b_a")
    cell.let("a", sp.log(-1 - z**2))
    with pytest.raises(NotDefined, match="not real and finite"):
        verify(symrnn.derive(cell.build()))
