"""symrnn.interop against PyTorch: a torch.nn.LSTM / torch.nn.GRU mapped by from_torch gives the
same outputs, final states and every gradient (the parameters', x's and the initial states') as
the generated module's forward and backward, in float64 to 1e-10 relative."""

import sys

import numpy as np
import pytest
from conftest import load_module, max_rel_err

torch = pytest.importorskip(
    "torch", reason="install symrnn[peers] (torch==2.13.0, CPU) to compare with PyTorch; CI does")

from symrnn.interop import GATES, from_torch, to_torch  # noqa: E402

T, B, D, H = 5, 3, 4, 6  # all different, so a transposed axis cannot hide
TOL = 1e-10
KINDS = {"lstm": torch.nn.LSTM, "gru_torch": torch.nn.GRU}


def random_module(kind, dtype=torch.float64, seed=0, **config):
    """A torch module with all weights and both biases drawn N(0, 0.5^2), so every gate and both
    halves of a summed bias matter (torch's own init is smaller)."""
    generator = torch.Generator().manual_seed(seed)
    module = kind(D, H, dtype=dtype, **config)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=generator, dtype=dtype))
    return module


def run_torch(module, x, state0, G, Gs):
    """Forward and autograd backward of L = sum(y G) + sum_s sum(state_T[s] Gs[s]) in torch."""
    xt = torch.tensor(x, requires_grad=True)
    s0 = {s: torch.tensor(v[None], requires_grad=True) for s, v in state0.items()}  # (1, B, H)
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
    grads = {name: getattr(module, f"{name}_l0").grad.numpy()
             for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    return (y.detach().numpy(), {s: v.detach().numpy() for s, v in state_T.items()},
            grads, xt.grad.numpy(), {s: v.grad[0].numpy() for s, v in s0.items()})


def problem(mod, seed=1, dtype=np.float64):
    """x, non-zero initial states and the loss weights G (for y) and Gs (for the final states)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    state0 = {s: (0.5 * rng.standard_normal((B, H))).astype(dtype) for s in mod.STATES}
    G = rng.standard_normal((T, B, H)).astype(dtype)
    Gs = {s: rng.standard_normal((B, H)).astype(dtype) for s in mod.STATES}
    return x, state0, G, Gs


def torch_grads_by_gate(cell, g):
    """The torch gradients in symrnn's layout, by the chain rule through the mapping: a weight's
    blocks as they are, and a summed bias b_k = bias_ih + bias_hh gets the same gradient on both
    halves (checked here, then given once)."""
    out = {}
    for gate, block, reads, W, b in GATES[cell][1]:
        rows = slice(block * H, (block + 1) * H)
        sides = reads.split("+")
        out[W] = np.concatenate([g[f"weight_{s}"][rows] for s in sides], axis=1)
        halves = [g[f"bias_{s}"][rows] for s in sides]
        for half in halves[1:]:
            assert max_rel_err(half, halves[0]) < TOL, f"torch's {gate} biases differ"
        out[b] = halves[0]
    return out


def parity_errors(kind, seed=0):
    """{what: max relative error} between symrnn and torch, over outputs and every gradient."""
    module = random_module(kind, seed=seed)
    cell, params = from_torch(module)
    mod = load_module(cell)
    x, state0, G, Gs = problem(mod, seed=seed + 1)
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


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_outputs_states_and_every_gradient_match_torch(cell, seed):
    errors = parity_errors(KINDS[cell], seed)
    states = load_module(cell).STATES
    assert len(errors) == 2 + 2 * len(states) + len(load_module(cell).PARAMS)
    bad = {k: e for k, e in errors.items() if not e < TOL}
    assert not bad, f"symrnn vs torch, max relative errors over {TOL}: {bad}"


@pytest.mark.parametrize("cell", KINDS)
def test_params_are_in_module_order_and_shape(cell):
    mod = load_module(cell)
    name, params = from_torch(random_module(KINDS[cell]))
    assert name == cell
    assert tuple(params) == mod.PARAMS
    shapes = mod.param_shapes(D, H)
    assert {k: v.shape for k, v in params.items()} == {k: tuple(s) for k, s in shapes.items()}


@pytest.mark.parametrize("cell", KINDS)
def test_round_trip(cell):
    module = random_module(KINDS[cell])
    _, params = from_torch(module)
    back = to_torch(cell, params)
    assert type(back) is KINDS[cell] and back.weight_ih_l0.dtype == torch.float64
    mod = load_module(cell)
    x, state0, G, Gs = problem(mod)
    y_a, state_a = run_torch(module, x, state0, G, Gs)[:2]
    y_b, state_b = run_torch(back, x, state0, G, Gs)[:2]
    assert max_rel_err(y_a, y_b) < TOL
    assert all(max_rel_err(state_a[s], state_b[s]) < TOL for s in mod.STATES)
    # the symrnn params come back exactly; the summed biases sit whole in bias_ih
    _, again = from_torch(back)
    assert all(np.array_equal(again[k], params[k]) for k in params)
    for _, block, reads, _, _ in GATES[cell][1]:
        if reads == "hh+ih":
            assert not back.bias_hh_l0[block * H:(block + 1) * H].any()


@pytest.mark.parametrize("cell", KINDS)
def test_to_torch_fills_a_given_module_in_place(cell):
    _, params = from_torch(random_module(KINDS[cell], seed=3))
    target = KINDS[cell](D, H, dtype=torch.float64)
    before = [id(p) for p in target.parameters()]
    assert to_torch(cell, params, module=target) is target
    assert [id(p) for p in target.parameters()] == before  # an optimizer's references still hold
    _, again = from_torch(target)
    assert all(np.array_equal(again[k], params[k]) for k in params)
    with pytest.raises(ValueError, match="input_size"):
        to_torch(cell, params, module=KINDS[cell](D + 1, H, dtype=torch.float64))


@pytest.mark.parametrize("cell", KINDS)
def test_float32_stays_float32(cell):
    module = random_module(KINDS[cell], dtype=torch.float32)
    _, params = from_torch(module)
    assert {v.dtype for v in params.values()} == {np.dtype(np.float32)}
    mod = load_module(cell)
    x, state0, G, Gs = problem(mod, dtype=np.float32)
    y, _, _ = mod.forward(params, x, state0)
    y_t = run_torch(module, x, state0, G, Gs)[0]
    assert y.dtype == np.float32 and max_rel_err(y, y_t) < 1e-5
    assert to_torch(cell, params).weight_ih_l0.dtype == torch.float32


@pytest.mark.parametrize("cell", KINDS)
@pytest.mark.parametrize("config, message", [
    ({"num_layers": 2}, "num_layers=2"),
    ({"bidirectional": True}, "bidirectional=True"),
    ({"batch_first": True}, "batch_first=True"),
    ({"bias": False}, "bias=False"),
])
def test_unsupported_configurations_raise(cell, config, message):
    with pytest.raises(ValueError, match=message):
        from_torch(KINDS[cell](D, H, **config))


def test_other_unsupported_inputs_raise():
    with pytest.raises(ValueError, match="proj_size=2"):
        from_torch(torch.nn.LSTM(D, H, proj_size=2))
    with pytest.raises(ValueError, match="only torch.nn.LSTM"):
        from_torch(torch.nn.RNN(D, H))
    with pytest.raises(ValueError, match="float16"):
        from_torch(torch.nn.GRU(D, H, dtype=torch.float16))
    _, params = from_torch(torch.nn.LSTM(D, H))
    with pytest.raises(ValueError, match="no torch module"):
        to_torch("gru", params)
    with pytest.raises(ValueError, match="must be"):
        to_torch("gru_torch", params)
    with pytest.raises(ValueError, match=r"params\['b_c'\] has shape"):
        to_torch("lstm", {**params, "b_c": params["b_c"][:-1]})
    with pytest.raises(ValueError, match="cannot hold"):
        to_torch("lstm", params, module=torch.nn.GRU(D, H))


def test_missing_torch_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'symrnn\[peers\]'"):
        from_torch(object())
