"""Every cell's generated backward against PyTorch autograd: symrnn.torch_cell prints the cell's
forward equations as a PyTorch step (no derivation involved) and autograd differentiates it. The
outputs, final states and every gradient (parameters, x, every other input, initial states) agree
with the NumPy and numba modules in float64 to 1e-10 relative, for every built-in and every test
cell, and for a highway cell (x read elementwise, so D = H), with vectors of more than one size
(lstmp: a has P units, c has H) and more than one input (gru_d: a time gap dt per sample and
step).

The printed step itself is checked against PyTorch's own modules where one exists
(torch.nn.LSTM(proj_size=P) for lstmp) and against steps written here by hand."""

import numpy as np
import pytest
import sympy as sp
from conftest import (
    BUILTIN_CELLS,
    CUSTOM_CELLS,
    get_cell,
    load_module,
    max_rel_err,
    needs_numba,
)

import symrnn
from symrnn.activations import relu, sigmoid, tanh
from symrnn.cell import CellBuilder

torch = pytest.importorskip(
    "torch", reason="install symrnn[peers] (torch==2.13.0, CPU) to compare with PyTorch; CI does")

from symrnn.torch_cell import CellLoop, step_source  # noqa: E402

TOL = 1e-10
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]
# Sizes all different, so a transposed axis cannot hide; P < H as torch.nn.LSTM's proj_size wants
T, B, D, H = 5, 2, 3, 7
EXTRA = {"P": 4}  # the sizes beyond D and H (lstmp's projection)


def build_highway():
    """A highway cell (after Srivastava et al. 2015): the output carries x itself, elementwise,
    so D = H; x also enters a nonlinearity elementwise."""
    cell = CellBuilder("highway", states=("a", "c"))
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    Gamma_f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f")))
    c = cell.let("c", Gamma_f * c_prev
                 + (1 - Gamma_f) * tanh(cell.affine("W_c", [a_prev, x], "b_c") + x))
    Gamma_r = cell.let("Gamma_r", sigmoid(cell.affine("W_r", [a_prev, x], "b_r")))
    cell.let("a", Gamma_r * c + (1 - Gamma_r) * x)
    return cell.build()


HERE = {"highway": build_highway}  # the test cells of this file
_MODULES = {}


def cell_of(name):
    return HERE[name]() if name in HERE else get_cell(name)


def module_of(name, backend):
    if name not in HERE:
        return load_module(name, backend)
    if (name, backend) not in _MODULES:
        _MODULES[name, backend] = symrnn.load(cell_of(name), backend)
    return _MODULES[name, backend]


def sizes_for(cell):
    """{"D": .., "H": .., "P": ..} for a random problem: D = H where the cell requires it."""
    sizes = {"D": D, "H": H, **{n: EXTRA[n] for n in cell.extra_sizes}}
    for d, h, _ in cell.requires:
        sizes[d] = sizes[h]
    return sizes


def width(cell, sizes, name):
    size = cell.size(name)
    return 1 if size == 1 else sizes[size]


def random_problem(cell, *, seed=3):
    """Random params, x, the other inputs (a size-1 input: irregular positive gaps, exponential),
    non-zero state0 of each state's size, and loss weights G (for y) and Gs (for state_T)."""
    rng, sizes = np.random.default_rng(seed), sizes_for(cell)
    extra = {n: sizes[n] for n in cell.extra_sizes}
    params = {k: 0.5 * rng.standard_normal(cell.param_shape(k, sizes["D"], sizes["H"], **extra))
              for k in cell.params}
    x = rng.standard_normal((T, B, sizes["D"]))
    inputs = {v: (rng.exponential(1.0, (T, B, 1)) if cell.size(v) == 1
                  else rng.standard_normal((T, B, width(cell, sizes, v))))
              for v in cell.inputs[1:]}
    state0 = {s: 0.5 * rng.standard_normal((B, width(cell, sizes, s))) for s in cell.states}
    G = rng.standard_normal((T, B, width(cell, sizes, cell.states[0])))
    Gs = {s: rng.standard_normal((B, width(cell, sizes, s))) for s in cell.states}
    return params, x, inputs, state0, G, Gs


def autograd(cell, params, x, inputs, state0, G, Gs):
    """y, state_T and the gradients of L = sum(y G) + sum_s sum(state_T[s] Gs[s]), by autograd:
    (y, state_T, grads, dx, dinputs, dstate0)."""
    loop = CellLoop(cell, params)
    xt = torch.tensor(x, requires_grad=True)
    it = {v: torch.tensor(u, requires_grad=True) for v, u in inputs.items()}
    s0 = {s: torch.tensor(v, requires_grad=True) for s, v in state0.items()}
    y, state_T = loop(xt, s0, **it)
    L = (y * torch.from_numpy(G)).sum() + sum((state_T[s] * torch.from_numpy(Gs[s])).sum()
                                              for s in state_T)
    L.backward()
    grads = {k: p.grad.numpy() for k, p in loop.P.items()}
    return (y.detach().numpy(), {s: v.detach().numpy() for s, v in state_T.items()}, grads,
            xt.grad.numpy(), {v: u.grad.numpy() for v, u in it.items()},
            {s: v.grad.numpy() for s, v in s0.items()})


def run_module(mod, cell, params, x, inputs, state0, G, Gs):
    """The generated module's (y, state_T, grads, dx, dinputs, dstate0): backward returns
    dinputs as a fourth item exactly when the cell has inputs beside x."""
    y, state_T, cache = mod.forward(params, x, state0, **inputs)
    out = mod.backward(params, cache, G, Gs)
    assert len(out) == (4 if inputs else 3), f"backward returned {len(out)} items"
    grads, dx, dstate0 = out[:3]
    dinputs = out[3] if inputs else {}
    assert set(dinputs) == set(inputs), f"dinputs has {sorted(dinputs)}, not {sorted(inputs)}"
    return y, state_T, grads, dx, dinputs, dstate0


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [*BUILTIN_CELLS, *CUSTOM_CELLS, *HERE])
def test_backward_matches_pytorch_autograd(name, backend):
    cell, mod = cell_of(name), module_of(name, backend)
    problem = random_problem(cell)
    params, x, inputs, state0, G, Gs = problem
    y, state_T, grads, dx, dinputs, dstate0 = run_module(mod, cell, *problem)
    y_ref, state_ref, grads_ref, dx_ref, dinputs_ref, dstate0_ref = autograd(cell, *problem)
    assert y.shape == G.shape, f"y: {y.shape}, not {G.shape}"
    pairs = [("y", y, y_ref), ("dx", dx, dx_ref)]
    pairs += [(f"dinputs[{v!r}]", dinputs[v], dinputs_ref[v]) for v in inputs]
    pairs += [(f"state_T[{s!r}]", state_T[s], state_ref[s]) for s in mod.STATES]
    pairs += [(f"dstate0[{s!r}]", dstate0[s], dstate0_ref[s]) for s in mod.STATES]
    pairs += [(f"grads[{k!r}]", grads[k], grads_ref[k]) for k in mod.PARAMS]
    assert list(mod.PARAMS) == list(cell.params) and list(mod.STATES) == list(cell.states)
    for label, ours, theirs in pairs:
        assert np.abs(theirs).max() > 0, f"{name}: {label} is zero in PyTorch: nothing compared"
        assert np.shape(ours) == np.shape(theirs), f"{name} ({backend}): {label} shape"
        assert max_rel_err(ours, theirs) < TOL, f"{name} ({backend}): {label}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lstmp", "gru_d", "highway"])
def test_zero_initial_states_have_each_states_own_size(name, backend):
    """state0=None: zeros of each state's own size, in the module and in CellLoop alike."""
    cell, mod = cell_of(name), module_of(name, backend)
    params, x, inputs, state0, G, _ = random_problem(cell, seed=5)
    zeros = {s: np.zeros_like(v) for s, v in state0.items()}
    y, state_T, _ = mod.forward(params, x, None, **inputs)
    loop = CellLoop(cell, params)
    with torch.no_grad():
        y_ref, state_ref = loop(torch.from_numpy(x), None,
                                **{v: torch.from_numpy(u) for v, u in inputs.items()})
        y_zero, _ = loop(torch.from_numpy(x), {s: torch.from_numpy(v) for s, v in zeros.items()},
                         **{v: torch.from_numpy(u) for v, u in inputs.items()})
    assert y_ref.shape == G.shape and np.array_equal(y_ref.numpy(), y_zero.numpy())
    assert max_rel_err(y, y_ref.numpy()) < TOL, f"{name} ({backend}): y"
    for s in cell.states:
        assert state_T[s].shape == state0[s].shape, f"{name} ({backend}): state_T[{s!r}] shape"
        assert max_rel_err(state_T[s], state_ref[s].numpy()) < TOL, f"{name}: state_T[{s!r}]"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lstmp", "gru_d", "highway"])
def test_one_step_matches_the_printed_step(name, backend):
    """The module's step(params, x_t, state, *, dt) against the printed step, from non-zero
    states of each state's size."""
    cell, mod = cell_of(name), module_of(name, backend)
    params, x, inputs, state0, _, _ = random_problem(cell, seed=6)
    new = mod.step(params, x[1], state0, **{v: u[1] for v, u in inputs.items()})
    loop = CellLoop(cell, params)
    with torch.no_grad():
        ref = loop.step(torch.from_numpy(x[1]), *(torch.from_numpy(u[1]) for u in inputs.values()),
                        *(torch.from_numpy(state0[s]) for s in cell.states), loop.P)
    assert set(new) == set(cell.states)
    for s, r in zip(cell.states, ref, strict=True):
        assert new[s].shape == state0[s].shape, f"{name} ({backend}): state[{s!r}] shape"
        assert max_rel_err(new[s], r.numpy()) < TOL, f"{name} ({backend}): state[{s!r}]"


def test_lstmp_is_torch_lstm_with_a_projection():
    """The printed lstmp step, looped, is torch.nn.LSTM(D, H, proj_size=P): the gates read
    [a_prev | x] (weight_hh | weight_ih, biases summed), torch's gates i, f, g, o are symrnn's
    u, f, c, o, and W_p is weight_hr."""
    P = EXTRA["P"]
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(D, H, proj_size=P).double()
    w = {k: v.detach().numpy() for k, v in lstm.named_parameters()}
    params = {}
    for row, k in enumerate("ufco"):
        rows = slice(row * H, (row + 1) * H)
        params[f"W_{k}"] = np.concatenate([w["weight_hh_l0"][rows], w["weight_ih_l0"][rows]], 1)
        params[f"b_{k}"] = w["bias_ih_l0"][rows] + w["bias_hh_l0"][rows]
    params["W_p"] = w["weight_hr_l0"]
    rng = np.random.default_rng(1)
    x, a0, c0 = (torch.from_numpy(rng.standard_normal(s)) for s in ((T, B, D), (B, P), (B, H)))
    loop = CellLoop(symrnn.get_cell("lstmp"), params)
    assert loop.sizes == {"D": D, "H": H, "P": P}
    with torch.no_grad():
        for state0, torch_state0 in ((None, None), ({"a": a0, "c": c0}, (a0[None], c0[None]))):
            y, state_T = loop(x, state0)
            y_ref, (a_ref, c_ref) = lstm(x, torch_state0)
            assert y.shape == (T, B, P)
            assert max_rel_err(y, y_ref) < TOL
            assert max_rel_err(state_T["a"], a_ref[0]) < TOL
            assert max_rel_err(state_T["c"], c_ref[0]) < TOL


def test_gru_d_decays_the_state_with_the_time_gap():
    """The printed gru_d step against one written here from Che et al.'s equations, with
    irregular gaps; a gap that changes changes the output."""
    cell = symrnn.get_cell("gru_d")
    params, x, inputs, state0, _, _ = random_problem(cell, seed=7)
    p = {k: torch.from_numpy(v) for k, v in params.items()}
    xt, dt = torch.from_numpy(x), torch.from_numpy(inputs["dt"])
    a = torch.from_numpy(state0["a"])

    def lin(k, *v):
        return torch.nn.functional.linear(torch.cat(v, 1), p[f"W_{k}"], p[f"b_{k}"])

    ys = []
    for t in range(T):
        a = a * torch.exp(-torch.relu(p["w_d"] * dt[t] + p["b_d"]))
        u, r = torch.sigmoid(lin("u", a, xt[t])), torch.sigmoid(lin("r", a, xt[t]))
        a = u * torch.tanh(lin("c", r * a, xt[t])) + (1 - u) * a
        ys.append(a)
    loop = CellLoop(cell, params)
    with torch.no_grad():
        y, state_T = loop(xt, {"a": torch.from_numpy(state0["a"])}, dt=dt)
        y_other, _ = loop(xt, {"a": torch.from_numpy(state0["a"])}, dt=dt + 1)
    assert max_rel_err(y, torch.stack(ys)) < TOL and max_rel_err(state_T["a"], a) < TOL
    assert max_rel_err(y, y_other) > 1e-3


def test_inputs_and_states_are_the_steps_arguments():
    """step(x, *other inputs, *previous states, P); a cell with x alone prints as it always did."""
    lstm, gru_d = step_source(get_cell("lstm")), step_source(symrnn.get_cell("gru_d"))
    assert lstm.startswith("def step(x, a_prev, c_prev, P):\n")
    assert 'z_f = F.linear(torch.cat([a_prev, x], 1), P["W_f"], P["b_f"])' in lstm
    assert "c = Gamma_f*c_prev + Gamma_u*c_tilde" in lstm
    assert lstm.rstrip().endswith("return a, c,")
    assert gru_d.startswith("def step(x, dt, a_prev, P):\n")
    assert "z_d = b_d + dt*w_d" in gru_d
    assert "a = Gamma_r*c + x*(1 - Gamma_r)" in step_source(build_highway())


@pytest.mark.parametrize("inputs, message", [
    ({}, r"cell 'gru_d': missing input 'dt' \(it takes x and dt=\(T, B, 1\)\)"),
    ({"gap": 1}, r"missing input 'dt'; unexpected input 'gap'"),
    ({"dt": 1, "gap": 1}, r"^cell 'gru_d': unexpected input 'gap' \(it takes x and dt="),
])
def test_a_missing_or_unexpected_input_is_one_line(inputs, message):
    cell = symrnn.get_cell("gru_d")
    params, x, given, _, _, _ = random_problem(cell)
    inputs = {v: torch.from_numpy(given["dt"]) for v in inputs}
    with pytest.raises(ValueError, match=message) as raised:
        CellLoop(cell, params)(torch.from_numpy(x), **inputs)
    assert "\n" not in str(raised.value)


def test_an_input_of_the_wrong_shape_or_a_cell_with_x_alone_is_refused():
    gru_d, lstmp = symrnn.get_cell("gru_d"), symrnn.get_cell("lstmp")
    params, x, inputs, _, _, _ = random_problem(gru_d)
    with pytest.raises(ValueError, match=rf"cell 'gru_d': dt: expected shape \({T}, {B}, 1\), "
                                         rf"got \({T}, {B}\)"):
        CellLoop(gru_d, params)(torch.from_numpy(x), dt=torch.from_numpy(inputs["dt"][..., 0]))
    with pytest.raises(ValueError, match=rf"cell 'gru_d': x: expected shape \(T, B, {D}\)"):
        CellLoop(gru_d, params)(torch.from_numpy(x[..., :2]), dt=torch.from_numpy(inputs["dt"]))
    params, x, _, _, _, _ = random_problem(lstmp)
    with pytest.raises(ValueError, match=r"^cell 'lstmp': unexpected input 'dt' \(it takes x "
                                         r"alone\)$"):
        CellLoop(lstmp, params)(torch.from_numpy(x), dt=torch.from_numpy(inputs["dt"]))


def test_highway_parameters_with_d_and_h_apart_are_refused():
    cell = build_highway()
    params = {k: np.zeros(cell.param_shape(k, D, H)) for k in cell.params}
    with pytest.raises(ValueError, match=f"D = {D} and H = {H} differ"):
        CellLoop(cell, params)


def test_the_cells_names_never_shadow_torch_f_or_p():
    """A cell may name a value torch, F or P: the step then calls them _torch, _F, _P, and
    computes what the same cell with other names computes."""
    def build(state, f, p):
        cell = CellBuilder("names", states=(state,))
        s_prev, x = cell.prev(state), cell.x
        f, p = cell.param(f), cell.param(p)
        z = cell.affine("W_a", [s_prev, x], "b_a")
        cell.let(state, f * tanh(z) + p * sp.Max(s_prev, 0) + sp.sqrt(1 + s_prev**2) * relu(x))
        return cell.build()

    clash, plain = build("torch", "F", "P"), build("a", "f", "p")
    source = step_source(clash)
    assert source.startswith("def step(x, torch_prev, _P):\n")
    assert "_F.linear(_torch.cat([torch_prev, x], 1)" in source and "_torch.tanh(" in source
    rng = np.random.default_rng(2)
    params = {k: rng.standard_normal(clash.param_shape(k, H, H)) for k in clash.params}
    x = torch.from_numpy(rng.standard_normal((T, B, H)))
    y, _ = CellLoop(clash, params)(x)
    y_ref, _ = CellLoop(plain, {{"F": "f", "P": "p"}.get(k, k): v for k, v in params.items()})(x)
    assert torch.equal(y, y_ref) and y.abs().max() > 0


def test_an_activation_without_a_pytorch_form_is_refused(monkeypatch):
    import dataclasses

    from symrnn.activations import REGISTRY

    monkeypatch.setitem(REGISTRY, "tanh", dataclasses.replace(REGISTRY["tanh"], torch=None))
    with pytest.raises(ValueError, match="no PyTorch function for the activation 'tanh'"):
        step_source(get_cell("lstm"))
