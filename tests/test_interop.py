"""symrnn.interop against PyTorch: a torch.nn.LSTM (proj_size=0 or P) / torch.nn.GRU mapped by
from_torch gives the same outputs, final states and every gradient (the parameters', x's and the
initial states') as the generated module's forward and backward (NumPy and numba), in float64 to
1e-10 relative. So does a trained multi-layer, bidirectional, batch_first module (bias or not,
proj_size or not) mapped by network_from_torch, run as a Network on a packed batch of different
lengths (from_packed / to_packed); to_torch brings either back."""

import sys

import numpy as np
import pytest
from conftest import load_module, max_rel_err, needs_numba

torch = pytest.importorskip(
    "torch", reason="install symrnn[peers] (torch==2.13.0, CPU) to compare with PyTorch; CI does")

from symrnn.api import get_cell  # noqa: E402
from symrnn.interop import (  # noqa: E402
    AS_IS,
    GATES,
    from_packed,
    from_torch,
    network_from_torch,
    state_from_torch,
    state_to_torch,
    to_packed,
    to_torch,
)

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


def torch_grads_by_gate(cell, g, suffix=""):
    """The torch gradients (of the weights named with ``suffix``, e.g. "_l1_reverse") in
    symrnn's layout, by the chain rule through the mapping: a weight's blocks as they are, and a
    summed bias b_k = bias_ih + bias_hh gets the same gradient on both halves (checked here, then
    given once); a weight torch holds as symrnn does as it is. No biases if g has none
    (bias=False)."""
    out = {W: g[name + suffix] for W, name in AS_IS.get(cell, {}).items()}
    for gate, block, reads, W, b in GATES[cell][1]:
        rows = slice(block * H, (block + 1) * H)
        sides = reads.split("+")
        out[W] = np.concatenate([g[f"weight_{s}{suffix}"][rows] for s in sides], axis=1)
        if f"bias_ih{suffix}" in g:
            halves = [g[f"bias_{s}{suffix}"][rows] for s in sides]
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
    ({"num_layers": 3, "batch_first": True}, "num_layers=3, batch_first=True"),
])
def test_a_network_is_not_a_cell(cell, config, message):
    with pytest.raises(ValueError, match=f"with {message} is a network, not one cell: use "
                                         r"symrnn.interop.network_from_torch\(module\)") as error:
        from_torch(new_module(cell, **config))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell", KINDS)
def test_bias_false_is_zero_biases(cell, backend):
    module = random_module(cell, bias=False)
    name, params = from_torch(module)
    assert name == cell and tuple(params) == get_cell(cell).params
    biases = {b for *_, b in GATES[cell][1]}
    assert all(params[b].shape == (H,) and not params[b].any() for b in biases)
    x, state0, G, Gs = problem(cell)
    y, state_T, cache = load_module(cell, backend).forward(params, x, state0)
    y_t, state_T_t, grads_t, dx_t, dstate0_t = run_torch(module, x, state0, G, Gs)
    assert max_rel_err(y, y_t) < TOL
    assert all(max_rel_err(state_T[s], state_T_t[s]) < TOL for s in state_T_t)
    grads, dx, dstate0 = load_module(cell, backend).backward(params, cache, G, Gs)
    assert max_rel_err(dx, dx_t) < TOL
    grads_t = torch_grads_by_gate(cell, grads_t)
    assert set(grads_t) == set(params) - biases
    assert all(max_rel_err(grads[k], grads_t[k]) < TOL for k in grads_t)


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
    with pytest.raises(ValueError, match="has proj_size=1; the params need proj_size=2"):
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


# --------------------------------------------------------------------------------------------
# Networks: num_layers, bidirectional, batch_first, bias, proj_size; packed batches
# --------------------------------------------------------------------------------------------

LENGTHS = np.array([T, 1, 3, T, 2])  # unsorted, T and 1 among them, a repeated length
NETWORK = {"num_layers": 2, "bidirectional": True, "batch_first": True}
# (cell, torch keywords beyond NETWORK and the cell's CONFIG)
NETWORKS = [
    ("lstm", {}),
    ("gru_torch", {}),
    ("lstm", {"bias": False}),
    ("gru_torch", {"bias": False}),
    ("lstmp", {}),
    ("lstmp", {"bias": False, "num_layers": 3}),
    ("lstm", {"num_layers": 3, "bidirectional": False, "batch_first": False}),
    ("gru_torch", {"bidirectional": True, "num_layers": 1, "batch_first": False}),
]
NETWORK_IDS = [f"{cell}-{'-'.join(f'{k}={v}' for k, v in config.items()) or 'default'}"
               for cell, config in NETWORKS]


def network_module(cell, seed=0, **config):
    """A torch module for ``cell`` with NETWORK's settings (overridden by ``config``), its
    own init, then trained 20 Adam steps in torch on a random regression over a packed batch,
    so no weight or bias is at its init (and a GRU's or LSTM's two biases differ)."""
    torch.manual_seed(seed)
    module = new_module(cell, **{**NETWORK, **config})
    init = [p.detach().clone() for p in module.parameters()]
    generator = torch.Generator().manual_seed(seed + 100)
    Tn, Bn = 7, 6
    x = torch.randn((Bn, Tn, D) if module.batch_first else (Tn, Bn, D), generator=generator,
                    dtype=torch.float64)
    lengths = torch.tensor([7, 2, 5, 1, 7, 4])
    packed = torch.nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=module.batch_first,
                                                     enforce_sorted=False)
    out = module(packed)[0].data
    target = torch.randn(out.shape, generator=generator, dtype=torch.float64)
    optimizer = torch.optim.Adam(module.parameters(), lr=0.03)
    for _ in range(20):
        optimizer.zero_grad()
        loss = ((module(packed)[0].data - target) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert all((p - p0).abs().min() > 1e-4 for p, p0 in zip(module.parameters(), init,
                                                                 strict=True))
    return module


def torch_shapes(module, states):
    """The (num_layers * dirs, B, size) shape of each torch state ("a" is h, "c" is c)."""
    rows = module.num_layers * (1 + module.bidirectional)
    sizes = {"a": module.proj_size or module.hidden_size, "c": module.hidden_size}
    return {s: (rows, len(LENGTHS), sizes[s]) for s in states}


def packed_problem(module, states, seed=1):
    """A padded x (random past each length too: nothing may read it), non-zero initial states
    in torch's layout, and the loss weights G (for the padded output, non-zero past the lengths
    too) and Gs (for the final states)."""
    rng = np.random.default_rng(seed)
    shape = (len(LENGTHS), T) if module.batch_first else (T, len(LENGTHS))
    out = (1 + module.bidirectional) * (module.proj_size or module.hidden_size)
    x = rng.standard_normal((*shape, D))
    shapes = torch_shapes(module, states)
    hx = {s: 0.5 * rng.standard_normal(shapes[s]) for s in states}
    G = rng.standard_normal((*shape, out))
    Gs = {s: rng.standard_normal(shapes[s]) for s in states}
    return x, hx, G, Gs


def run_torch_packed(module, x, hx, G, Gs):
    """torch on the packed batch: L = sum(padded output * G) + sum_s sum(final state s * Gs[s]);
    returns the packed input and output, the padded output, the final states, every parameter's
    gradient by name, the gradient w.r.t. the padded x and w.r.t. each initial state."""
    xt = torch.tensor(x, requires_grad=True)
    h0 = {s: torch.tensor(v, requires_grad=True) for s, v in hx.items()}
    packed = torch.nn.utils.rnn.pack_padded_sequence(
        xt, torch.from_numpy(LENGTHS), batch_first=module.batch_first, enforce_sorted=False)
    module.zero_grad()
    states = tuple(h0.values())
    output, state_n = module(packed, states if len(states) > 1 else states[0])
    state_n = dict(zip(hx, state_n if isinstance(state_n, tuple) else (state_n,), strict=True))
    y = torch.nn.utils.rnn.pad_packed_sequence(output, batch_first=module.batch_first,
                                               total_length=T)[0]
    loss = (y * torch.from_numpy(G)).sum()
    loss = loss + sum((state_n[s] * torch.from_numpy(Gs[s])).sum() for s in state_n)
    loss.backward()
    return (packed, output, y.detach().numpy(), {s: v.detach() for s, v in state_n.items()},
            {name: p.grad.numpy() for name, p in module.named_parameters()},
            xt.grad.numpy(), {s: v.grad for s, v in h0.items()})


def prefixes(module):
    return [f"l{k}{d}" for k in range(module.num_layers)
            for d in (("", "_reverse") if module.bidirectional else ("",))]


def network_errors(cell, config, backend):
    """{what: max relative error} between a Network mapped by network_from_torch and torch,
    over the output (padded), the packed output, the final states and every gradient."""
    module = network_module(cell, **config)
    net, params = network_from_torch(module, backend=backend)
    states = get_cell(cell).states
    x, hx, G, Gs = packed_problem(module, states)
    packed, output_t, y_t, state_n_t, grads_t, dx_t, dh0_t = run_torch_packed(
        module, x, hx, G, Gs)

    # the packed batch as symrnn reads it: padded with zeros, lengths in the batch's order
    xs, lengths = from_packed(packed, batch_first=module.batch_first)
    assert lengths.dtype == np.int64 and np.array_equal(lengths, LENGTHS)
    steps = np.arange(T)[None, :] if module.batch_first else np.arange(T)[:, None]
    valid = (steps < (LENGTHS[:, None] if module.batch_first else LENGTHS[None, :]))[..., None]
    assert np.array_equal(xs, np.where(valid, x, 0.0))

    state0 = state_from_torch(net, tuple(torch.from_numpy(hx[s]) for s in states))
    y, state_T, cache = net.forward(params, x, state0, lengths=lengths)  # x: padding not zero
    assert not np.where(valid, 0.0, y).any(), "y is not 0 past the lengths"
    output = to_packed(y, lengths, batch_first=module.batch_first)
    for field in ("batch_sizes", "sorted_indices", "unsorted_indices"):
        assert torch.equal(getattr(output, field), getattr(output_t, field))
    state_n = state_to_torch(net, state_T)
    state_n = dict(zip(states, state_n if isinstance(state_n, tuple) else (state_n,),
                       strict=True))
    grads, dx, dstate0 = net.backward(params, cache, G, state_from_torch(
        net, tuple(torch.from_numpy(Gs[s]) for s in states)))
    assert not np.where(valid, 0.0, dx).any(), "dx is not 0 past the lengths"

    errors = {"y": max_rel_err(y, y_t), "x": max_rel_err(dx, dx_t),
              "packed y": max_rel_err(output.data, output_t.data.detach())}
    dh0 = state_to_torch(net, dstate0)
    dh0 = dict(zip(states, dh0 if isinstance(dh0, tuple) else (dh0,), strict=True))
    for s in states:
        assert state_n[s].shape == torch_shapes(module, states)[s]
        errors[f"state_n[{s!r}]"] = max_rel_err(state_n[s], state_n_t[s])
        errors[f"state0[{s!r}]"] = max_rel_err(dh0[s], dh0_t[s])
    compared = set()  # every torch parameter's gradient is compared
    for prefix in prefixes(module):
        mapped = torch_grads_by_gate(cell, grads_t, f"_{prefix}")
        compared |= {name for name in grads_t if name.endswith(f"_{prefix}")}
        for k, g in mapped.items():
            assert np.abs(g).max() > 1e-3, f"degenerate problem: d{prefix}.{k} ~ 0"
            errors[f"{prefix}.{k}"] = max_rel_err(grads[f"{prefix}.{k}"], g)
    assert compared == set(grads_t)
    return errors


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cell, config", NETWORKS, ids=NETWORK_IDS)
def test_network_matches_trained_torch_on_a_packed_batch(cell, config, backend):
    errors = network_errors(cell, config, backend)
    bad = {k: e for k, e in errors.items() if not e < TOL}
    assert not bad, f"symrnn vs torch, max relative errors over {TOL}: {bad}"


@pytest.mark.parametrize("cell, config", NETWORKS, ids=NETWORK_IDS)
def test_network_params_names_shapes_and_copies(cell, config):
    module = network_module(cell, **config)
    net, params = network_from_torch(module)
    assert net.cell.CELL == cell and tuple(params) == net.PARAMS
    settings = {**NETWORK, **config}
    assert (net.input_size, net.hidden_size) == (D, H)
    assert all(getattr(net, k) == settings[k] for k in ("num_layers", "bidirectional",
                                                         "batch_first"))
    assert net.sizes == EXTRA.get(cell, {})
    assert {k: v.shape for k, v in params.items()} == {k: tuple(s) for k, s in
                                                       net.param_shapes().items()}
    assert all(v.dtype == np.float64 for v in params.values())
    # layer 1 reads dirs * out: its weights have that many input columns after the state's
    out = P if cell == "lstmp" else H
    if settings["num_layers"] > 1:
        assert params["l1.W_u"].shape == (H, out + (1 + settings["bidirectional"]) * out)
    before = {k: v.copy() for k, v in params.items()}
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)
    assert all(np.array_equal(params[k], before[k]) for k in params)


@pytest.mark.parametrize("cell, config", NETWORKS, ids=NETWORK_IDS)
def test_network_round_trip(cell, config):
    module = network_module(cell, **config)
    net, params = network_from_torch(module)
    back = to_torch(net, params)
    assert type(back) is type(module) and back.bias is True
    for k in ("input_size", "hidden_size", "num_layers", "bidirectional", "batch_first",
              "proj_size"):
        assert getattr(back, k) == getattr(module, k), k
    assert back.weight_ih_l0.dtype == torch.float64
    states = get_cell(cell).states
    x, hx, G, Gs = packed_problem(module, states)
    a = run_torch_packed(module, x, hx, G, Gs)
    b = run_torch_packed(back, x, hx, G, Gs)
    assert max_rel_err(a[2], b[2]) < TOL
    assert all(max_rel_err(a[3][s], b[3][s]) < TOL for s in states)
    assert max_rel_err(a[5], b[5]) < TOL  # d/dx
    # the symrnn params come back exactly; the summed biases sit whole in bias_ih
    net_again, again = network_from_torch(back)
    assert net_again.PARAMS == net.PARAMS
    assert all(np.array_equal(again[k], params[k]) for k in params)
    for prefix in prefixes(module):
        for _, block, reads, _, _ in GATES[cell][1]:
            if reads == "hh+ih":
                assert not getattr(back, f"bias_hh_{prefix}")[block * H:(block + 1) * H].any()
    # in place, into a module of the same settings (bias=False too: its biases are all zero)
    target = new_module(cell, **{**NETWORK, **config})
    ids = [id(p) for p in target.parameters()]
    assert to_torch(net, params, module=target) is target
    assert [id(p) for p in target.parameters()] == ids
    assert all(np.array_equal(v, params[k]) for k, v in network_from_torch(target)[1].items())


def test_network_to_torch_refuses_what_torch_cannot_hold():
    module = network_module("lstm")
    net, params = network_from_torch(module)
    with pytest.raises(ValueError, match=r"missing \['l1_reverse.b_o'\]"):
        to_torch(net, {k: v for k, v in params.items() if k != "l1_reverse.b_o"})
    with pytest.raises(ValueError, match=r"unexpected \['l2.W_f'\]"):
        to_torch(net, {**params, "l2.W_f": params["l1.W_f"]})
    with pytest.raises(ValueError, match=r"params\['l1.W_f'\]: expected shape \(6, 18\), got "
                                         r"\(6, 10\)"):
        to_torch(net, {**params, "l1.W_f": params["l0.W_f"]})
    with pytest.raises(ValueError, match="int64 params"):
        to_torch(net, {k: v.astype(np.int64) for k, v in params.items()})
    for wrong, message in [
        (new_module("lstm", **{**NETWORK, "num_layers": 3}),
         "the module has num_layers=3; the params need num_layers=2"),
        (new_module("lstm", **{**NETWORK, "batch_first": False}),
         "has batch_first=False; the params need batch_first=True"),
        (new_module("lstm", D + 1, H, **NETWORK), "has input_size=5; the params need input_size=4"),
        (new_module("lstmp", **NETWORK), "holds 'lstmp' params; it cannot hold 'lstm' params"),
        (new_module("gru_torch", **NETWORK), "holds 'gru_torch' params; it cannot hold 'lstm'"),
        (new_module("lstm", **NETWORK, bias=False),
         r"bias=False; it cannot hold the non-zero biases b_u, b_f, b_c, b_o \(of l0\)"),
    ]:
        with pytest.raises(ValueError, match=message) as error:
            to_torch(net, params, module=wrong)
        assert "\n" not in str(error.value)
    # a network of a cell torch has no module for
    from symrnn.api import network
    gru = network("gru", D, H, num_layers=2)
    with pytest.raises(ValueError, match="a Network of 'gru' has no torch module"):
        to_torch(gru, gru.init_params(rng=0))
    lstmp = network("lstmp", D, H, num_layers=2, P=H)  # a Network may have P = H, torch not
    with pytest.raises(ValueError, match="P=6, H=6: torch.nn.LSTM needs 0 < proj_size < hidden"):
        to_torch(lstmp, lstmp.init_params(rng=0))
    # the single-cell form checks the module's layout as well
    _, cell_params = from_torch(random_module("lstm"))
    with pytest.raises(ValueError, match="has num_layers=2; the params need num_layers=1"):
        to_torch("lstm", cell_params, module=new_module("lstm", num_layers=2))


@pytest.mark.parametrize("module, message", [
    (lambda: torch.nn.RNN(D, H, num_layers=2), "RNN has no symrnn cell: only torch.nn.LSTM"),
    (lambda: torch.nn.LSTM(D, H, num_layers=2, dropout=0.25, dtype=torch.float64),
     r"dropout=0.25: a symrnn Network has no dropout .* set module.dropout = 0"),
    (lambda: torch.nn.GRU(D, H, num_layers=2, dtype=torch.float16), "float16 weights"),
])
def test_network_from_torch_refuses_with_one_line(module, message):
    with pytest.raises(ValueError, match=message) as error:
        network_from_torch(module())
    assert "\n" not in str(error.value)


def test_dropout_is_refused_only_where_it_acts():
    module = torch.nn.LSTM(D, H, num_layers=2, dropout=0.25, dtype=torch.float64)
    module.dropout = 0
    net, _ = network_from_torch(module)  # the eval-mode function, as the message says
    assert net.num_layers == 2
    with pytest.warns(UserWarning, match="dropout"):  # torch: no layer after the only one
        one = torch.nn.LSTM(D, H, dropout=0.25, dtype=torch.float64)
    assert from_torch(one)[0] == "lstm"


def test_float32_network_stays_float32():
    module = torch.nn.GRU(D, H, num_layers=2, bidirectional=True, dtype=torch.float32)
    net, params = network_from_torch(module)
    assert {v.dtype for v in params.values()} == {np.dtype(np.float32)}
    assert to_torch(net, params).weight_ih_l1_reverse.dtype == torch.float32


@pytest.mark.parametrize("batch_first", [False, True])
def test_packed_round_trip(batch_first):
    rng = np.random.default_rng(0)
    shape = (len(LENGTHS), T, 3) if batch_first else (T, len(LENGTHS), 3)
    padded = rng.standard_normal(shape)
    packed = to_packed(padded, LENGTHS, batch_first=batch_first)
    reference = torch.nn.utils.rnn.pack_padded_sequence(
        torch.from_numpy(padded), torch.from_numpy(LENGTHS), batch_first=batch_first,
        enforce_sorted=False)
    assert torch.equal(packed.data, reference.data)
    assert torch.equal(packed.batch_sizes, reference.batch_sizes)
    assert torch.equal(packed.unsorted_indices, reference.unsorted_indices)
    x, lengths = from_packed(packed, batch_first=batch_first)
    assert x.shape == shape and x.dtype == np.float64
    assert lengths.dtype == np.int64 and np.array_equal(lengths, LENGTHS)
    for b, L in enumerate(LENGTHS):
        seq, got = (padded[b], x[b]) if batch_first else (padded[:, b], x[:, b])
        assert np.array_equal(got[:L], seq[:L]) and not got[L:].any()
    # a packed batch whose longest sequence is shorter than T pads to its own longest
    x, lengths = from_packed(to_packed(padded, np.minimum(LENGTHS, 3), batch_first=batch_first),
                             batch_first=batch_first)
    assert x.shape[1 if batch_first else 0] == 3


def test_packed_errors_are_one_line():
    y = np.zeros((T, len(LENGTHS), 2))
    for args, message in [
        ((y, np.array([T, 0, 1, 2, 3])), r"every length in 1..5 \(T\), got 0..5"),
        ((y, np.array([T + 1, 1, 1, 2, 3])), r"every length in 1..5 \(T\), got 1..6"),
        ((y, LENGTHS[:-1]), r"lengths: expected integers of shape \(5,\)"),
        ((y, LENGTHS.astype(float)), r"lengths: expected integers of shape \(5,\), got float64"),
        ((np.zeros(3), LENGTHS), r"y: expected a padded array \(T, B, ...\)"),
        ((np.zeros((T, 0, 2)), LENGTHS[:0]), "a batch of 0 sequences"),
    ]:
        with pytest.raises(ValueError, match=message) as error:
            to_packed(*args)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="takes a torch.nn.utils.rnn.PackedSequence, not Tensor"):
        from_packed(torch.zeros(3, 2, 1))


def test_state_layout_errors_are_one_line():
    net, _ = network_from_torch(new_module("lstm", **NETWORK))
    h = torch.zeros(4, 2, H, dtype=torch.float64)
    assert set(state_from_torch(net, (h, h))) == set(net.STATES)
    for hx, message in [
        (h, r"'lstm' has 2 states \(a, c\); got 1 tensors"),
        ((h[:2], h[:2]), r"state 'a': expected shape \(4, B, size\) \(num_layers \* dirs first\), "
                         r"got \(2, 2, 6\)"),
    ]:
        with pytest.raises(ValueError, match=message) as error:
            state_from_torch(net, hx)
        assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match=r"state: missing \['l1_reverse.c'\]"):
        state_to_torch(net, {k: v for k, v in state_from_torch(net, (h, h)).items()
                             if k != "l1_reverse.c"})
