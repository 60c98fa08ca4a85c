"""Vectors of more than one size and more than one per-step input (issue 14): lstmp (a state of
size P), gru_d (a time gap dt of one number per step), a highway cell (x added elementwise, so
D = H), a mean over a P-vector and a second input read by an affine map. Gradients against
central finite differences in float64 on both backends; bad input gives one clear line."""

import numpy as np
import pytest
import sympy as sp
from conftest import FD_TOL, HAVE_NUMBA, gradient_errors, max_rel_err, random_problem

import symrnn
from symrnn import layer_norm, mean
from symrnn.activations import sigmoid, tanh
from symrnn.cell import CellBuilder, CellError

BACKENDS = ["numpy"] + (["numba"] if HAVE_NUMBA else [])


def highway():
    """x added to the state elementwise (a highway connection): D must equal H."""
    cell = CellBuilder("highway", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    r = cell.let("Gamma_r", sigmoid(cell.affine("W_r", [a_prev, x], "b_r")))
    c = cell.let("c_tilde", tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    cell.let("a", r * c + (1 - r) * x)
    return cell.build()


def pnorm():
    """A state of size P from a layer-normalised projection, a P-sized gain, a mean over H."""
    cell = CellBuilder("pnorm", states=("a", "c"), sizes={"a": "P"})
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f")))
    c = cell.let("c", f * c_prev + (1 - f) * tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    g = cell.param("g")
    cell.let("a", g * layer_norm(cell.affine("W_p", [c])) + mean(c))
    return cell.build()


def timed():
    """A second input (size 1) read by an affine map and elementwise."""
    cell = CellBuilder("timed", states=("a",), inputs=("x", "dt"), sizes={"dt": 1})
    a_prev, x, dt = cell.prev("a"), cell.x, cell.input("dt")
    k = cell.let("k", sigmoid(cell.affine("W_k", [a_prev, x, dt], "b_k")))
    cell.let("a", k * tanh(cell.affine("W_a", [a_prev, x])) * sp.exp(-dt * dt)
             + (1 - k) * a_prev)
    return cell.build()


def dt_affine():
    """One affine map reading x and dt: dt's product adds to x's over all of Z (it overwrote it
    in the NumPy module once)."""
    cell = CellBuilder("dt_affine", states=("a",), inputs=("x", "dt"), sizes={"dt": 1})
    cell.let("a", tanh(cell.affine("W_a", [cell.prev("a"), cell.x, cell.input("dt")], "b_a")))
    return cell.build()


def two_d():
    """A second input of size D beside x in one map: H + 2 D columns (D is read as half)."""
    cell = CellBuilder("two_d", states=("a",), inputs=("x", "xo"), sizes={"xo": "D"})
    cell.let("a", tanh(cell.affine("W_a", [cell.prev("a"), cell.x, cell.input("xo")], "b_a")))
    return cell.build()


def d_node():
    """A gate of size D (x read elementwise beside no H-vector) in a cell of D and H alone: the
    module reads D and H apart (the fuzzer found it read as H once)."""
    cell = CellBuilder("d_node", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    i = cell.let("i", sigmoid(cell.affine("W_i", [x, a_prev]) + x))
    cell.let("a", tanh(cell.affine("W_a", [a_prev, i], "b_a")))
    return cell.build()


def mean_x():
    """A mean over x itself (D units) in a cell of D and H alone: its kernels need D."""
    cell = CellBuilder("mean_x", states=("a",))
    cell.let("a", tanh(cell.affine("W_a", [cell.prev("a"), cell.x], "b_a")) * mean(cell.x))
    return cell.build()


CELLS = {"lstmp": "lstmp", "gru_d": "gru_d", "highway": highway, "pnorm": pnorm,
         "timed": timed, "dt_affine": dt_affine, "two_d": two_d, "d_node": d_node,
         "mean_x": mean_x}
_LOADED = {}


def module(name, backend="numpy"):
    if (name, backend) not in _LOADED:
        cell = CELLS[name]
        _LOADED[name, backend] = symrnn.load(cell if isinstance(cell, str) else cell(), backend)
    return _LOADED[name, backend]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(CELLS))
def test_gradients_match_finite_differences(name, backend):
    mod = module(name, backend)
    errors = gradient_errors(mod, seed=3, **({"D": 4} if name == "highway" else {}))
    expected = {f"params[{k!r}]" for k in mod.PARAMS} | {"x"} | set(mod.INPUTS[1:])
    assert set(errors) == expected | {f"state0[{s!r}]" for s in mod.STATES}
    vanishing = {k: g for k, (_, g) in errors.items() if g < 1e-3}
    assert not vanishing, f"degenerate test problem, gradients ~0: {vanishing}"
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert not bad, f"{name} ({backend}): relative error vs finite differences: {bad}"


def test_sizes_and_inputs_are_in_the_contract():
    lstmp, gru_d, hw = module("lstmp"), module("gru_d"), module("highway")
    assert lstmp.SIZES == {"x": "D", "a": "P", "c": "H"} and lstmp.INPUTS == ("x",)
    assert gru_d.SIZES == {"x": "D", "dt": 1, "a": "H"} and gru_d.INPUTS == ("x", "dt")
    assert lstmp.param_shapes(3, 5, P=2)["W_f"] == (5, 2 + 3)
    assert lstmp.param_shapes(3, 5, P=2)["W_p"] == (2, 5)
    params = lstmp.init_params(3, 5, P=2, rng=0, dtype=np.float32)
    y, state_T, cache = lstmp.forward(params, np.ones((4, 6, 3), np.float32))
    assert y.shape == (4, 6, 2) and y.dtype == np.float32
    assert state_T["a"].shape == (6, 2) and state_T["c"].shape == (6, 5)
    grads, dx, dstate0 = lstmp.backward(params, cache, np.ones_like(y))
    assert dstate0["a"].shape == (6, 2) and grads["W_p"].dtype == np.float32
    params = gru_d.init_params(3, 5, rng=0)
    dt = np.random.default_rng(0).exponential(1.0, (4, 6, 1))
    y, state_T, cache = gru_d.forward(params, np.ones((4, 6, 3)), dt=dt)
    grads, dx, dstate0, dinputs = gru_d.backward(params, cache, np.ones_like(y))
    assert set(dinputs) == {"dt"} and dinputs["dt"].shape == (4, 6, 1)
    assert hw.param_shapes(4, 4)["W_r"] == (4, 8)


def test_existing_modules_keep_their_contract():
    lstm = symrnn.load("lstm")
    assert lstm.INPUTS == ("x",) and lstm.SIZES == {"x": "D", "a": "H", "c": "H"}
    params = lstm.init_params(3, 5, rng=0)
    y, state_T, cache = lstm.forward(params, np.ones((4, 2, 3)))
    assert len(lstm.backward(params, cache, np.ones_like(y))) == 3


def one_line_error(call, kind=ValueError):
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message and "broadcast" not in message
    return message


def test_bad_input_gives_one_clear_line():
    lstmp, gru_d, hw = module("lstmp"), module("gru_d"), module("highway")
    assert "P:" in one_line_error(lambda: lstmp.init_params(3, 5))
    assert "P:" in one_line_error(lambda: lstmp.param_shapes(3, 5))
    assert "P: expected a positive integer" in one_line_error(
        lambda: lstmp.init_params(3, 5, P=0))
    message = one_line_error(lambda: hw.init_params(3, 4))
    assert message.startswith("input_size:") and "equal hidden_size" in message
    message = one_line_error(lambda: hw.forward(hw.init_params(4, 4), np.ones((2, 1, 3))))
    assert message.startswith("x: expected")
    params = lstmp.init_params(3, 5, P=2)
    message = one_line_error(lambda: lstmp.forward(params, np.ones((2, 1, 3)),
                                                   {"a": np.zeros((1, 5)), "c": np.zeros((1, 5))}))
    assert message.startswith("state0['a']: expected shape (1, 2)")
    y, _, cache = lstmp.forward(params, np.ones((2, 1, 3)))
    assert one_line_error(lambda: lstmp.backward(params, cache, np.ones((2, 1, 5)))).startswith(
        "dy: expected shape (2, 1, 2)")
    params = gru_d.init_params(3, 5)
    assert "dt" in one_line_error(lambda: gru_d.forward(params, np.ones((2, 1, 3))), TypeError)
    assert one_line_error(lambda: gru_d.forward(params, np.ones((2, 1, 3)), dt=np.ones((2, 1)))
                          ).startswith("dt: expected shape (2, 1, 1)")
    assert one_line_error(lambda: gru_d.step(params, np.ones((1, 3)), None, dt=np.ones((2, 1)))
                          ).startswith("dt: expected shape (1, 1)")


def test_a_size_contradiction_names_the_equation_and_both_sizes():
    cell = CellBuilder("bad", states=("a", "c"), sizes={"a": "P"})
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    c = cell.let("c", tanh(cell.affine("W", [a_prev, x], "b")) * c_prev)
    cell.let("a", sigmoid(c) * a_prev)
    with pytest.raises(CellError,
                       match=r"the equation of a combines vectors of size (H and P|P and H)"):
        cell.build()


def test_a_state_of_size_one_is_refused():
    cell = CellBuilder("s1", states=("a", "s"), sizes={"s": 1})
    cell.let("a", tanh(cell.affine("W_a", [cell.prev("a"), cell.x], "b_a")) + cell.prev("s"))
    cell.let("s", cell.prev("s") / 2 + mean(cell.prev("a")))
    with pytest.raises(CellError, match="state 's' is declared of size 1"):
        cell.build()


def test_an_affine_map_reading_a_vector_twice_is_refused():
    cell = CellBuilder("dup", states=("a",))
    cell.let("a", tanh(cell.affine("W_a", [cell.x, cell.prev("a"), cell.prev("a")], "b_a")))
    with pytest.raises(CellError, match="the affine map W_a reads a_prev twice"):
        cell.build()


def gru_d_reference(params, x, dt, a0):
    """GRU-D's decay and the seed's GRU, written here from the equations in NumPy."""
    def sig(z):
        return 1 / (1 + np.exp(-z))
    a, ys = a0, []
    for x_t, dt_t in zip(x, dt, strict=True):
        gamma = np.exp(-np.maximum(params["w_d"] * dt_t + params["b_d"], 0))
        a = gamma * a
        u = sig(np.concatenate([a, x_t], 1) @ params["W_u"].T + params["b_u"])
        r = sig(np.concatenate([a, x_t], 1) @ params["W_r"].T + params["b_r"])
        c = np.tanh(np.concatenate([r * a, x_t], 1) @ params["W_c"].T + params["b_c"])
        a = u * c + (1 - u) * a
        ys.append(a)
    return np.stack(ys)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gru_d_on_irregularly_spaced_sequences(backend):
    """Gaps drawn from an exponential law (irregular sampling): the module equals GRU-D written
    from its equations; with no gap the state does not decay, and the cell is the seed's GRU."""
    gru_d, gru = module("gru_d", backend), symrnn.load("gru", backend)
    rng = np.random.default_rng(5)
    params = gru_d.init_params(3, 5, rng=1)
    params["w_d"] = np.abs(params["w_d"]) + 0.5  # every unit decays with the gap
    x, a0 = rng.standard_normal((30, 4, 3)), rng.standard_normal((4, 5))
    dt = rng.exponential(2.0, (30, 4, 1))
    dt[::7] = 0.0
    y, state_T, _ = gru_d.forward(params, x, {"a": a0}, dt=dt)
    assert max_rel_err(y, gru_d_reference(params, x, dt, a0)) < 1e-12
    params["b_d"] = -np.abs(params["b_d"])  # gamma = 1 at dt = 0
    plain = {k: params[k] for k in gru.PARAMS}
    y, _, _ = gru_d.forward(params, x, {"a": a0}, dt=np.zeros_like(dt))
    assert max_rel_err(y, gru.forward(plain, x, {"a": a0})[0]) < 1e-12
    long_gap = np.full_like(dt, 1e3)  # the state forgets everything before each step
    y, _, _ = gru_d.forward(params, x, {"a": a0}, dt=long_gap)
    expected = np.stack([gru.forward(plain, x[t:t + 1])[0][0] for t in range(len(x))])
    assert max_rel_err(y, expected) < 1e-12


@pytest.mark.parametrize("backend", BACKENDS)
def test_step_is_one_forward_step(backend):
    gru_d = module("gru_d", backend)
    params, x, state0, _, _ = random_problem(gru_d, seed=2, inputs=(inputs := {}))
    state = gru_d.step(params, x[0], state0, dt=inputs["dt"][0])
    _, state_T, _ = gru_d.forward(params, x[:1], state0, dt=inputs["dt"][:1])
    assert max_rel_err(state["a"], state_T["a"]) == 0


@pytest.mark.skipif(not HAVE_NUMBA, reason="pip install 'symrnn[numba]'")
@pytest.mark.parametrize("name", sorted(CELLS))
def test_numba_agrees_with_numpy_in_float32(name):
    kw = {"D": 4} if name == "highway" else {}
    mods = [module(name, b) for b in ("numpy", "numba")]
    inputs = {}
    params, x, state0, G, Gs = random_problem(mods[0], seed=4, dtype=np.float32, inputs=inputs,
                                              T=7, B=3, **kw)
    outs = []
    for mod in mods:
        y, state_T, cache = mod.forward(params, x, state0, **inputs)
        grads, dx, dstate0, *rest = mod.backward(params, cache, G, Gs)
        assert y.dtype == np.float32 and dx.dtype == np.float32
        outs.append((y.copy(), grads, dx, rest))
    assert max_rel_err(outs[0][0], outs[1][0]) < 1e-5
    for k in params:
        assert max_rel_err(outs[0][1][k], outs[1][1][k]) < 1e-4, k
    assert max_rel_err(outs[0][2], outs[1][2]) < 1e-4
