"""`symrnn.verify`: central differences at 60 digits against the derived backward, on an instance
where every size has its own number of units (D = 2, H = 3, P = 4, ...). It passes on correct cells
(built-in, SymPy's functions, reductions over the units, vectors of several sizes, inputs beyond x)
and fails, naming the quantity, on a corrupted activation derivative, a corrupted reduction, a
corrupted projection cell (lstmp) or time-gap cell (gru_d), or a mean over P divided by H."""

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
from symrnn.verify import NotDefined, _Instance, instance_sizes, verify

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
    quantities = [*cell.params, *(f"{v}<{t + 1}>" for v in cell.inputs
                                  for t in range(options.get("steps", 2))),
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


# -- vectors of several sizes, inputs beyond x ----------------------------------------------------

def _highway():
    """a = Gamma_r c + (1 - Gamma_r) x: x read elementwise, so the cell requires D = H."""
    cell = CellBuilder("highway", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    r = cell.let("Gamma_r", sigmoid(cell.affine("W_r", [a_prev, x], "b_r")))
    c = cell.let("c", tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    cell.let("a", r * c + (1 - r) * x)
    return cell.build()


def _projected_layer_norm():
    """c (H units) projected to a (P units) and normalised over P: means of P-vectors."""
    cell = CellBuilder("proj_ln", states=("a", "c"), sizes={"a": "P"})
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    c = cell.let("c", tanh(cell.affine("W_c", [a_prev, c_prev, x], "b_c")))
    z = cell.affine("W_p", [c])
    cell.let("a", cell.param("g_a") * cell.layer_norm(z) + cell.param("beta_a"))
    return cell.build()


def _second_input():
    """A time gap dt (one number per sample and step) read by the affine map and elementwise."""
    cell = CellBuilder("second_input", states=("a",), inputs=("x", "dt"), sizes={"dt": 1})
    a_prev, x, dt = cell.prev("a"), cell.x, cell.input("dt")
    cell.let("a", tanh(cell.affine("W_a", [a_prev, x, dt], "b_a")) * sp.exp(-dt**2))
    return cell.build()


def _input_of_its_own_size():
    """An input e of a size E of its own, read elementwise (with a parameter of size E), by an
    affine map and by a mean (1/E)."""
    cell = CellBuilder("own_size", states=("a",), inputs=("x", "e"), sizes={"e": "E"})
    a_prev, x, e = cell.prev("a"), cell.x, cell.input("e")
    q = cell.let("q", sp.sin(e) * cell.param("w_q"))
    cell.let("a", tanh(cell.affine("W_a", [a_prev, x, q], "b_a")) + cell.mean(e * e))
    return cell.build()


SIZED = {"lstmp": lambda: symrnn.get_cell("lstmp"), "gru_d": lambda: symrnn.get_cell("gru_d"),
         "highway": _highway, "projected_layer_norm": _projected_layer_norm,
         "second_input": _second_input, "input_of_its_own_size": _input_of_its_own_size}


@pytest.mark.parametrize("name", list(SIZED))
def test_passes_for_several_sizes_and_inputs(name):
    _assert_passes(SIZED[name]())


def test_passes_with_other_numbers_of_units():
    _assert_passes(symrnn.get_cell("lstmp"), points=1, units=2, sizes={"P": 3})
    _assert_passes(_highway(), points=1, inputs=2, units=2)  # D = H = 2
    _assert_passes(symrnn.get_cell("gru_d"), steps=1, points=1, units=1, inputs=1)


@pytest.mark.parametrize("name, counts", [
    ("lstmp", {"D": 2, "H": 3, "P": 4}), ("gru_d", {"D": 2, "H": 3}),
    ("highway", {"D": 3, "H": 3}), ("projected_layer_norm", {"D": 2, "H": 3, "P": 4}),
    ("input_of_its_own_size", {"D": 2, "H": 3, "E": 4})])
def test_every_size_has_its_own_number_of_units(name, counts):
    """D = 2, H = 3, the others 4, 5, ...; a size required equal to another takes its number; the
    instance's shapes are the cell's own (``Cell.param_shape``), every input of its size."""
    cell = SIZED[name]()
    assert instance_sizes(cell, 3, 2, None) == counts
    instance = _Instance(cell, counts, steps=2)
    for p in cell.params:
        assert instance.shapes[p] == cell.param_shape(p, **counts), p
    for v in cell.inputs:
        want = 1 if cell.size(v) == 1 else counts[cell.size(v)]
        assert instance.shapes[f"{v}<1>"] == instance.shapes[f"{v}<2>"] == (want,)
    for s in cell.states:
        assert instance.shapes[f"{s}<0>"] == (counts[cell.size(s)],)


def test_sizes_that_cannot_be():
    with pytest.raises(ValueError, match="no size 'P'"):
        verify(symrnn.derive("gru"), sizes={"P": 2})
    with pytest.raises(ValueError, match="D = 2, H = 3, but the cell needs them equal"):
        verify(symrnn.derive(_highway()), sizes={"D": 2, "H": 3})
    with pytest.raises(ValueError, match="P must be a whole number"):
        verify(symrnn.derive("lstmp"), sizes={"P": 0})


def _failed(derivation):
    return {c.quantity for c in verify(derivation) if not c.ok}


LSTMP_ALL = {"W_f", "b_f", "W_u", "b_u", "W_c", "b_c", "W_o", "b_o", "W_p", "x<1>", "x<2>", "a<0>",
             "c<0>"}


@pytest.mark.parametrize("adjoint, change, failing", [
    # tanh'(c) path without the output gate: dtanh_c = dh instead of Gamma_o dh
    ("dtanh_c", lambda e: e.xreplace({sym("Gamma_o"): 1}), LSTMP_ALL - {"W_p"}),
    # the forget gate's path to c_prev dropped
    ("dc_prev", lambda e: e.xreplace({sym("Gamma_f"): 1}), {"c<0>"}),
])
def test_fails_for_a_corrupted_lstmp(adjoint, change, failing):
    assert failing <= _failed(_corrupt(symrnn.derive("lstmp"), adjoint, change))


def test_a_p_vector_where_an_h_vector_belongs_fails():
    """dh = W_p^T dz_p (H entries) plus da (P entries): vectors of two sizes combined."""
    wrong = _corrupt(symrnn.derive("lstmp"), "dh", lambda e: e + sym("da"))
    checks = verify(wrong)
    assert checks and not any(c.ok for c in checks)
    assert "vectors of sizes [3, 4] combined" in checks[0].detail


@pytest.mark.parametrize("adjoint, change, failing", [
    # relu's adjoint with the sign of exp(-u)' lost
    ("drelu_z_d", lambda e: -e, {"w_d", "b_d", "dt<1>", "dt<2>"}),
    # the time gap's gradient summed from the wrong parameter: only dt's checks fail
    ("ddt", lambda e: e.xreplace({sym("w_d"): sym("b_d")}), {"dt<1>", "dt<2>"}),
])
def test_fails_for_a_corrupted_gru_d(adjoint, change, failing):
    failed = _failed(_corrupt(symrnn.derive("gru_d"), adjoint, change))
    assert failing <= failed
    if adjoint == "ddt":
        assert failed == failing


def test_a_time_gap_gradient_that_is_a_vector_fails():
    """ddt = unitsum(dz_d w_d) with the sum over the units dropped: H numbers for one."""
    wrong = _corrupt(symrnn.derive("gru_d"), "ddt",
                     lambda e: e.replace(lambda u: isinstance(u, unitsum), lambda u: u.args[0]))
    checks = verify(wrong)
    assert checks and not any(c.ok for c in checks)
    assert "ddt is a vector of 3 entries" in checks[0].detail


def test_fails_for_a_mean_over_p_divided_by_h():
    """The mean of the P-vector z_p sends dmu_p / P; with / H (H = 3, P = 4) it must fail."""
    derivation = symrnn.derive(_projected_layer_norm())
    (dz_p,) = (a for a in derivation.backward if a.out.name == "dz_p")
    assert sym("P") in dz_p.expr.free_symbols and UNITS not in dz_p.expr.free_symbols
    wrong = _corrupt(derivation, "dz_p", lambda e: e.xreplace({sym("P"): UNITS}))
    assert {"W_p", "W_c", "x<1>", "a<0>", "c<0>"} <= _failed(wrong)


def test_fails_for_a_mean_over_an_input_of_its_own_size_divided_by_h():
    derivation = symrnn.derive(_input_of_its_own_size())
    wrong = _corrupt(derivation, "da_in", lambda e: e.xreplace({sym("E"): UNITS}))
    assert _failed(wrong) == {"e<1>", "e<2>"}


def test_fails_for_a_highway_without_its_elementwise_input_path():
    """dx = da (1 - Gamma_r) + projections: the elementwise term dropped."""
    wrong = _corrupt(symrnn.derive(_highway()), "dx", lambda e: sp.S.Zero)
    assert _failed(wrong) == {"x<1>", "x<2>"}


def test_fails_for_a_second_input_without_its_projection():
    """ddt without W_a's dt column transposed times dz_a."""
    derivation = symrnn.derive(_second_input())
    backward = tuple(dataclasses.replace(a, projections=()) if a.out.name == "ddt" else a
                     for a in derivation.backward)
    assert backward != derivation.backward
    assert _failed(dataclasses.replace(derivation, backward=backward)) == {"dt<1>", "dt<2>"}


@pytest.mark.parametrize("units, ok", [(sym("P"), True), (UNITS, False)])
def test_a_unitsum_of_one_number_per_sample_counts_its_vectors_units(units, ok):
    """dsigma_p_in, the adjoint of the P-vector (z_p - mu_p)**2 under a mean, is one number per
    sample (dmean / P): unitsum(dsigma_p_in) is P times it, so adding unitsum(dsigma_p_in) -
    P dsigma_p_in to dmu_p changes nothing, and adding it with H in place of P does."""
    derivation = symrnn.derive(_projected_layer_norm())
    d = sym("dsigma_p_in")
    assert d in derivation.per_sample
    changed = _corrupt(derivation, "dmu_p", lambda e: e + unitsum(d) - units * d)
    checks = verify(changed)
    assert all(c.ok for c in checks) is ok, [c for c in checks if not c.ok]


def test_given_sizes_win_over_the_defaults():
    assert instance_sizes(_highway(), sizes={"D": 4}) == {"D": 4, "H": 4}
    assert instance_sizes(symrnn.get_cell("lstmp"), 2, 5) == {"D": 5, "H": 2, "P": 6}
