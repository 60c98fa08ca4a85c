"""symrnn.interop against PyTorch: a torch.nn.LSTM (proj_size=0 or P) / torch.nn.GRU mapped by
from_torch gives the same outputs, final states and every gradient (the parameters', x's and the
initial states') as the generated module's forward and backward (NumPy and numba), in float64 to
1e-10 relative."""

import sys

import numpy as np
import pytest
from conftest import load_module, max_rel_err, needs_numba

torch = pytest.importorskip(
    "torch", reason="install symrnn[peers] (torch==2.13.0, CPU) to compare with PyTorch; CI does")

from symrnn.api import get_cell  # noqa: E402
from symrnn.interop import AS_IS, GATES, from_torch, to_torch  # noqa: E402

T, B, D, H, P = 5, 3, 4, 6, 2  # all different, so a transposed axis cannot hide
TOL = 1e-10
KINDS = {"lstm": torch.nn.LSTM, "lstmp": torch.nn.LSTM, "gru_torch": torch.nn.GRU}
CONFIG = {"lstmp": {"proj_size": P}}  # the torch keywords that make the module this cell
EXTRA = {"lstmp": {"P": P}}  # the cell's sizes beyond D and H (param_shapes, init_params)
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]
# torch runs an LSTM with proj_size on its own kernel, not oneDNN's, and says so once per process
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")


def new_module(cell, *args, dtype=torch.float64, **config):
    """An untouched torch module of the kind that maps to ``cell`` (D, H unless ``args``)."""
    return KINDS[cell](*(args or (D, H)), dtype=dtype, **{**CONFIG.get(cell, {}), **config})


def size(cell, state):
    """The number of units of a state of ``cell``: H, or P for lstmp's "a"."""
    return {"H": H, "P": P}[get_cell(cell).size(state)]


def random_module(cell, dtype=torch.float64, seed=0, **config):
    """A torch module for ``cell`` with all weights and both biases drawn N(0, 0.5^2), so every
    gate and both halves of a summed bias matter (torch's own init is smaller)."""
    generator = torch.Generator().manual_seed(seed)
    module = new_module(cell, dtype=dtype, **config)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=dtype))
    return module


def run_torch(module, x, state0, G, Gs):
    """Forward and autograd backward of L = sum(y G) + sum_s sum(state_T[s] Gs[s]) in torch."""
    xt = torch.tensor(x, requires_grad=True)
    s0 = {s: torch.tensor(v[None], requires_grad=True) for s, v in state0.items()}  # (1, B, .)
    module.zero_grad()
    if isinstance(module, torch.nn.LSTM):
        y, (h_T, c_T) = module(xt, (s0["a"], s0["c"]))
        state_T = {"a": h_T[0], "c": c_T[0]}
    else:
        y, h_T = module(xt, s0["a"])
        state_T = {"a": h_T[0]}
    loss = (y * torch.from_numpy(G)).sum()
    loss = loss + sum((state_T[s] * torch.from_numpy(Gs[s])).sum() for s in state_T)
    loss.backward()
    grads = {name.removesuffix("_l0"): p.grad.numpy() for name, p in module.named_parameters()}
    return (y.detach().numpy(), {s: v.detach().numpy() for s, v in state_T.items()},
            grads, xt.grad.numpy(), {s: v.grad[0].numpy() for s, v in s0.items()})


def problem(cell, seed=1, dtype=np.float64):
    """x, non-zero initial states and the loss weights G (for y) and Gs (for the final states)."""
    rng = np.random.default_rng(seed)
    states = get_cell(cell).states
    x = rng.standard_normal((T, B, D)).astype(dtype)
    state0 = {s: (0.5 * rng.standard_normal((B, size(cell, s)))).astype(dtype) for s in states}
    G = rng.standard_normal((T, B, size(cell, states[0]))).astype(dtype)
    Gs = {s: rng.standard_normal((B, size(cell, s))).astype(dtype) for s in states}
    return x, state0, G, Gs


def torch_grads_by_gate(cell, g):
    """The torch gradients in symrnn's layout, by the chain rule through the mapping: a weight's
    blocks as they are, and a summed bias b_k = bias_ih + bias_hh gets the same gradient on both
    halves (checked here, then given once); a weight torch holds as symrnn does as it is."""
    out = {W: g[name] for W, name in AS_IS.get(cell, {}).items()}
    for gate, block, reads, W, b in GATES[cell][1]:
        rows = slice(block * H, (block + 1) * H)
        sides = reads.split("+")
        out[W] = np.concatenate([g[f"weight_{s}"][rows] for s in sides], axis=1)
        halves = [g[f"bias_{s}"][rows] for s in sides]
        for half in halves[1:]:
            assert max_rel_err(half, halves[0]) < TOL, f"torch's {gate} biases differ"
        out[b] = halves[0]
    return out


def parity_errors(cell, seed=0, backend="numpy"):
    """{what: max relative error} between symrnn and torch, over outputs and every gradient."""
    module = random_module(cell, seed=seed)
    name, params = from_torch(module)
    assert name == cell
    mod = load_module(cell, backend)
    x, state0, G, Gs = problem(cell, seed=seed + 1)
    y, state_T, cache = mod.forward(params, x, state0)
    grads, dx, dstate0 = mod.backward(params, cache, G, Gs)
    y_t, state_T_t, grads_t, dx_t, dstate0_t = run_torch(module, x, state0, G, Gs)
    grads_t = torch_grads_by_gate(cell, grads_t)
    assert set(grads_t) == set(mod.PARAMS)
    errors = {"y": max_rel_err(y, y_t), "x": max_rel_err(dx, dx_t)}
    for s in mod.STATES:
        errors[f"state_T[{s!r}]"] = max_rel_err(state_T[s], state_T_t[s])
        errors[f"state0[{s!r}]"] = max_rel_err(dstate0[s], dstate0_t[s])
    for k in mod.PARAMS:
        assert np.abs(grads[k]).max() > 1e-3, f"degenerate problem: d{k} ~ 0"
        errors[f"params[{k!r}]"] = max_rel_err(grads[k], grads_t[k])
    return errors


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_outputs_states_and_every_gradient_match_torch(cell, seed, backend):
    errors = parity_errors(cell, seed, backend)
    states = load_module(cell).STATES
    assert len(errors) == 2 + 2 * len(states) + len(load_module(cell).PARAMS)
    bad = {k: e for k, e in errors.items() if not e < TOL}
    assert not bad, f"symrnn vs torch, max relative errors over {TOL}: {bad}"


@pytest.mark.parametrize("cell", KINDS)
def test_params_are_in_module_order_and_shape(cell):
    mod = load_module(cell)
    module = random_module(cell)
    name, params = from_torch(module)
    assert name == cell
    assert tuple(params) == mod.PARAMS
    shapes = mod.param_shapes(D, H, **EXTRA.get(cell, {}))
    assert {k: v.shape for k, v in params.items()} == {k: tuple(s) for k, s in shapes.items()}
    # copies: changing the torch module leaves the params as they were
    before = {k: v.copy() for k, v in params.items()}
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    assert all(np.array_equal(params[k], before[k]) for k in params)


@pytest.mark.parametrize("cell", KINDS)
def test_round_trip(cell):
    module = random_module(cell)
    _, params = from_torch(module)
    back = to_torch(cell, params)
    assert type(back) is KINDS[cell] and back.weight_ih_l0.dtype == torch.float64
    assert (back.input_size, back.hidden_size) == (D, H)
    assert getattr(back, "proj_size", 0) == CONFIG.get(cell, {}).get("proj_size", 0)
    x, state0, G, Gs = problem(cell)
    y_a, state_a = run_torch(module, x, state0, G, Gs)[:2]
    y_b, state_b = run_torch(back, x, state0, G, Gs)[:2]
    assert max_rel_err(y_a, y_b) < TOL
    assert set(state_b) == set(get_cell(cell).states)
    assert all(max_rel_err(state_a[s], state_b[s]) < TOL for s in state_b)
    # the symrnn params come back exactly; the summed biases sit whole in bias_ih
    _, again = from_torch(back)
    assert all(np.array_equal(again[k], params[k]) for k in params)
    for _, block, reads, _, _ in GATES[cell][1]:
        if reads == "hh+ih":
            assert not back.bias_hh_l0[block * H:(block + 1) * H].any()


@pytest.mark.parametrize("cell", KINDS)
def test_to_torch_fills_a_given_module_in_place(cell):
    _, params = from_torch(random_module(cell, seed=3))
    target = new_module(cell)
    before = [id(p) for p in target.parameters()]
    assert to_torch(cell, params, module=target) is target
    assert [id(p) for p in target.parameters()] == before  # an optimizer's references still hold
    _, again = from_torch(target)
    assert all(np.array_equal(again[k], params[k]) for k in params)
    with pytest.raises(ValueError, match="input_size"):
        to_torch(cell, params, module=new_module(cell, D + 1, H))


@pytest.mark.parametrize("cell", KINDS)
def test_float32_stays_float32(cell):
    module = random_module(cell, dtype=torch.float32)
    _, params = from_torch(module)
    assert {v.dtype for v in params.values()} == {np.dtype(np.float32)}
    mod = load_module(cell)
    x, state0, G, Gs = problem(cell, dtype=np.float32)
    y, state_T, _ = mod.forward(params, x, state0)
    y_t, state_T_t = run_torch(module, x, state0, G, Gs)[:2]
    assert y.dtype == np.float32 and max_rel_err(y, y_t) < 1e-5
    assert all(state_T[s].dtype == np.float32 and max_rel_err(state_T[s], state_T_t[s]) < 1e-5
               for s in state_T_t)
    assert to_torch(cell, params).weight_ih_l0.dtype == torch.float32


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("config, message", [
    ({"num_layers": 2}, "num_layers=2"),
    ({"bidirectional": True}, "bidirectional=True"),
    ({"batch_first": True}, "batch_first=True"),
    ({"bias": False}, "bias=False"),
])
def test_unsupported_configurations_raise(cell, config, message):
    with pytest.raises(ValueError, match=message) as error:
        from_torch(new_module(cell, **config))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("proj_size, cell", [(0, "lstm"), (1, "lstmp"), (H - 1, "lstmp")])
def test_proj_size_picks_the_cell(proj_size, cell):
    name, params = from_torch(torch.nn.LSTM(D, H, proj_size=proj_size, dtype=torch.float64))
    assert name == cell and tuple(params) == get_cell(cell).params
    assert params["W_f"].shape == (H, (proj_size or H) + D)


def test_bad_lstmp_params_raise_one_line():
    _, params = from_torch(random_module("lstmp"))
    _, lstm_params = from_torch(random_module("lstm"))
    shapes = {k: v.shape for k, v in params.items()}
    bad = [
        ({k: v for k, v in params.items() if k != "W_p"}, r"must be \['W_c'.*'W_p'"),
        (lstm_params, r"params for 'lstmp' must be"),
        ({**params, "W_p": params["W_p"][:, :-1]}, r"params\['W_p'\]: expected shape \(2, 6\)"),
        ({**params, "W_p": params["W_p"][0]}, r"params\['W_p'\]: expected shape \(P, H\)"),
        ({**params, "b_o": params["b_o"][:-1]}, r"params\['b_o'\]: expected shape \(6,\)"),
        ({**params, "W_c": params["W_c"][:, 1:]}, r"params\['W_c'\]: expected shape \(6, 6\)"),
        # consistent shapes with P = H (or P + D = P): torch cannot hold them
        ({k: np.zeros(shapes[k][:-1] + (H + D,)) if k.startswith("W_") and k != "W_p"
          else np.zeros((H, H)) if k == "W_p" else params[k] for k in params},
         r"P=6, H=6; torch.nn.LSTM needs 0 < proj_size < hidden_size"),
        ({k: np.zeros((H, P)) if k.startswith("W_") and k != "W_p" else params[k]
          for k in params}, r"expected shape \(H, D \+ P\) with D > 0, got \(6, 2\)"),
        ({k: v.astype(np.int64) for k, v in params.items()}, "int64 params"),
    ]
    for wrong, message in bad:
        with pytest.raises(ValueError, match=message) as error:
            to_torch("lstmp", wrong)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="holds 'lstm' params; it cannot hold 'lstmp'"):
        to_torch("lstmp", params, module=torch.nn.LSTM(D, H, dtype=torch.float64))
    with pytest.raises(ValueError, match="holds 'lstmp' params; it cannot hold 'lstm'"):
        to_torch("lstm", lstm_params, module=new_module("lstmp"))
    with pytest.raises(ValueError, match="proj_size=1; the params have D=4, H=6, P=2"):
        to_torch("lstmp", params, module=torch.nn.LSTM(D, H, proj_size=1, dtype=torch.float64))


def test_other_unsupported_inputs_raise():
    with pytest.raises(ValueError, match="only torch.nn.LSTM"):
        from_torch(torch.nn.RNN(D, H))
    with pytest.raises(ValueError, match="float16"):
        from_torch(torch.nn.GRU(D, H, dtype=torch.float16))
    _, params = from_torch(torch.nn.LSTM(D, H))
    with pytest.raises(ValueError, match="no torch module"):
        to_torch("gru", params)
    with pytest.raises(ValueError, match="must be"):
        to_torch("gru_torch", params)
    with pytest.raises(ValueError, match=r"params\['b_c'\]: expected shape \(6,\), got \(5,\)"):
        to_torch("lstm", {**params, "b_c": params["b_c"][:-1]})
    with pytest.raises(ValueError, match="cannot hold"):
        to_torch("lstm", params, module=torch.nn.GRU(D, H))


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'symrnn\[peers\]'"):
        from_torch(object())
