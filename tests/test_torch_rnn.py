"""symrnn.torch.RNN: any cell as a PyTorch module with nn.LSTM's constructor and call, whose
forward and backward are the generated network's through one torch.autograd.Function.

- torch.autograd.gradcheck (float64) for every built-in cell, lstm_peephole and a user cell from
  a TOML file, padded and packed (lengths, unsorted), with initial states and the cell's other
  inputs (gru_d's dt); two layers, both directions for lstm (both backends) and gru_d.
- The same numbers as independent references in float64 to 1e-10, gradients included:
  symrnn.torch_cell.CellLoop (the cell's step printed as PyTorch code, autograd) for one layer,
  run sequence by sequence for a packed bidirectional batch; torch.nn.LSTM for a 2-layer
  bidirectional batch_first LSTM on a packed batch.
- A plain PyTorch training loop (Adam, a Linear readout) solves the adding problem (short
  sequences) below the baseline for lstm_peephole and the TOML cell.
- nn.LSTM's conventions (batch_first, unbatched input, a single state tensor for one-state cells,
  dtypes, .double()) and one-line errors for non-CPU tensors, dtypes and shapes.
"""

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, needs_numba

torch = pytest.importorskip(
    "torch", reason="install symrnn[peers] (torch==2.13.0, CPU) for symrnn.torch; CI does")

import symrnn  # noqa: E402
from symrnn import adding  # noqa: E402
from symrnn.cells import BUILTINS  # noqa: E402
from symrnn.torch import RNN, default_backend  # noqa: E402
from symrnn.torch_cell import CellLoop  # noqa: E402

pack = torch.nn.utils.rnn.pack_padded_sequence
F64 = torch.float64
T, B, D, H = 3, 2, 2, 3
EXTRA = {"lstmp": {"P": 2}}  # the sizes beyond D and H
SPECS = ROOT / "tests" / "specs"
# user cells: mix's output state is h and its maps read three vectors; nested nests activations
USERS = {"mix.toml": str(SPECS / "mix.toml"), "nested.toml": str(SPECS / "nested.toml")}
CELLS = [*BUILTINS, *USERS.values()]
TOL = 1e-10
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def cell_id(cell):
    return next((name for name, path in USERS.items() if path == cell), cell)


def make(cell, *, backend="numpy", seed=0, dtype=F64, **kwargs):
    torch.manual_seed(seed)
    name = symrnn.get_cell(cell).name
    return RNN(cell, D, H, backend=backend, dtype=dtype, **EXTRA.get(name, {}), **kwargs)


def random_state(rnn, batch, seed=1):
    """One (layers * dirs, batch, size) tensor per state (slstm's normaliser n positive)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for s in rnn.states:
        low, high = (0.5, 1.5) if (rnn.cell_name, s) == ("slstm", "n") else (-0.8, 0.8)
        shape = (rnn.num_layers * rnn.dirs, batch, rnn.widths[s])
        out.append(low + (high - low) * torch.rand(shape, generator=g, dtype=F64))
    return out


def random_inputs(rnn, steps, batch, seed=2):
    """The cell's other inputs (gru_d's dt: positive time gaps), time-major."""
    g = torch.Generator().manual_seed(seed)
    return {v: 0.1 + 2 * torch.rand(steps, batch, rnn.widths[v], generator=g, dtype=F64)
            for v in rnn.inputs}


def as_state(rnn, states):
    return states[0] if len(states) == 1 else tuple(states)


def as_list(state):
    return [state] if isinstance(state, torch.Tensor) else list(state)


def gradcheck(rnn, x, lengths=None, fast=False):
    """gradcheck w.r.t. x, every initial state, every other input and every parameter (fast:
    gradcheck's fast mode, for the networks of many parameters)."""
    states = random_state(rnn, x.shape[1])
    inputs = random_inputs(rnn, *x.shape[:2])
    names = [name for name, _ in rnn.named_parameters()]
    params = [p.detach().clone() for _, p in rnn.named_parameters()]
    k, n = len(states), len(inputs)

    def f(x, *tensors):
        state, extra = tensors[:k], dict(zip(inputs, tensors[k:k + n], strict=True))
        ps = dict(zip(names, tensors[k + n:], strict=True))
        if lengths is not None:
            x = pack(x, lengths, enforce_sorted=False)
            extra = {v: pack(t, lengths, enforce_sorted=False) for v, t in extra.items()}
        y, state_n = torch.func.functional_call(rnn, ps, (x, as_state(rnn, state)), extra)
        return (y.data if lengths is not None else y), *as_list(state_n)

    tensors = [t.requires_grad_() for t in (x, *states, *inputs.values(), *params)]
    assert torch.autograd.gradcheck(f, tensors, fast_mode=fast)


def random_x(steps=T, batch=B, features=D, seed=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(steps, batch, features, generator=g, dtype=F64)


# ---------------------------------------------------------------------------------------------
# gradcheck
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", CELLS, ids=cell_id)
def test_gradcheck_padded(cell):
    gradcheck(make(cell), random_x())


@pytest.mark.parametrize("cell", CELLS, ids=cell_id)
def test_gradcheck_packed(cell):
    """Unsorted lengths, the longest T and a sequence of one step."""
    gradcheck(make(cell), random_x(batch=3), lengths=torch.tensor([2, 3, 1]))


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_lstm_two_layers_bidirectional(backend):
    rnn = make("lstm", backend=backend, num_layers=2, bidirectional=True)
    gradcheck(rnn, random_x(batch=3), lengths=torch.tensor([2, 3, 1]), fast=True)
    gradcheck(rnn, random_x(), fast=True)


def test_gradcheck_gru_d_two_layers_bidirectional():
    """dt reaches every layer and direction; its gradient is their sum."""
    rnn = make("gru_d", num_layers=2, bidirectional=True)
    gradcheck(rnn, random_x(batch=3), lengths=torch.tensor([3, 1, 2]), fast=True)


def test_gradcheck_default_backend():
    """The default backend (numba when installed)."""
    rnn = make("lstm", backend=None, bidirectional=True)
    assert rnn.backend == default_backend()
    gradcheck(rnn, random_x(batch=3), lengths=torch.tensor([1, 3, 2]))


# ---------------------------------------------------------------------------------------------
# Against independent references, float64, 1e-10
# ---------------------------------------------------------------------------------------------


def rel_err(a, b):
    a, b = a.detach().double(), b.detach().double()
    scale = max(a.abs().max().item() if a.numel() else 0.0,
                b.abs().max().item() if b.numel() else 0.0, 1e-30)
    return (a - b).abs().max().item() / scale if a.numel() else 0.0


def cell_loop(rnn, prefix):
    """CellLoop over the parameters of one layer and direction of rnn."""
    cell = rnn.cell
    params = {name.split(".", 1)[1]: value for name, value in rnn.numpy_params().items()
              if name.split(".", 1)[0] == prefix}
    return CellLoop(cell, params)


@pytest.mark.parametrize("cell", CELLS, ids=cell_id)
def test_matches_cell_loop(cell, backend="numpy"):
    """One layer: outputs, final states and every gradient equal CellLoop's (autograd)."""
    rnn = make(cell, backend=backend)
    loop = cell_loop(rnn, "l0")
    x = random_x(steps=5, batch=3).requires_grad_()
    states = [s.requires_grad_() for s in random_state(rnn, 3)]
    inputs = {v: t.requires_grad_() for v, t in random_inputs(rnn, 5, 3).items()}
    y, state_n = rnn(x, as_state(rnn, states), **inputs)
    y_ref, state_ref = loop(x, {s: v[0] for s, v in zip(rnn.states, states, strict=True)},
                            **inputs)
    assert rel_err(y, y_ref) < TOL
    for s, value in zip(rnn.states, as_list(state_n), strict=True):
        assert rel_err(value[0], state_ref[s]) < TOL, s
    g = torch.Generator().manual_seed(4)
    G = torch.randn(y.shape, generator=g, dtype=F64)
    Gs = [torch.randn(v.shape, generator=g, dtype=F64) for v in as_list(state_n)]
    loss = (y * G).sum() + sum((v * w).sum() for v, w in zip(as_list(state_n), Gs, strict=True))
    loss_ref = (y_ref * G).sum() + sum((state_ref[s] * w[0]).sum()
                                       for s, w in zip(rnn.states, Gs, strict=True))
    wrt = [x, *states, *inputs.values()]
    ours = torch.autograd.grad(loss, wrt + [p for _, p in rnn.named_parameters()])
    ref = torch.autograd.grad(loss_ref, wrt + [loop.P[n] for n in rnn.net.cell.PARAMS])
    labels = ["x", *rnn.states, *inputs, *rnn.net.cell.PARAMS]
    for label, a, b in zip(labels, ours, ref, strict=True):
        assert rel_err(a, b) < TOL, label


@needs_numba
def test_matches_cell_loop_numba():
    test_matches_cell_loop("lstm", backend="numba")


@pytest.mark.parametrize("cell", ["lstm", "gru_d"])
def test_packed_bidirectional_matches_cell_loop_per_sequence(cell):
    """A packed batch of unsorted lengths through one bidirectional layer: each sequence is
    CellLoop over its own steps, the reverse direction over them from the last to the first."""
    rnn = make(cell, bidirectional=True)
    lengths = [3, 1, 4, 2]
    nb, steps = len(lengths), max(lengths)
    x = random_x(steps=steps, batch=nb).requires_grad_()
    states = [s.requires_grad_() for s in random_state(rnn, nb)]
    inputs = {v: t.requires_grad_() for v, t in random_inputs(rnn, steps, nb).items()}
    packed = pack(x, torch.tensor(lengths), enforce_sorted=False)
    out, state_n = rnn(packed, as_state(rnn, states),
                       **{v: pack(t, torch.tensor(lengths), enforce_sorted=False)
                          for v, t in inputs.items()})
    assert torch.equal(out.batch_sizes, packed.batch_sizes)
    assert torch.equal(out.sorted_indices, packed.sorted_indices)
    y, out_lengths = torch.nn.utils.rnn.pad_packed_sequence(out)
    assert out_lengths.tolist() == lengths
    loops = [cell_loop(rnn, "l0"), cell_loop(rnn, "l0_reverse")]
    g = torch.Generator().manual_seed(5)
    G = torch.randn(y.shape, generator=g, dtype=F64)
    Gs = [torch.randn(v.shape, generator=g, dtype=F64) for v in as_list(state_n)]
    loss = (y * G).sum() + sum((v * w).sum() for v, w in zip(as_list(state_n), Gs, strict=True))
    loss_ref = 0
    for b, L in enumerate(lengths):
        for d, loop in enumerate(loops):
            order = torch.arange(L - 1, -1, -1) if d else torch.arange(L)
            y_ref, s_ref = loop(x[order, b:b + 1],
                                {s: v[d, b:b + 1] for s, v in zip(rnn.states, states,
                                                                   strict=True)},
                                **{v: t[order, b:b + 1] for v, t in inputs.items()})
            y_ref = y_ref[:, 0].flip(0) if d else y_ref[:, 0]
            half = slice(H, None) if d else slice(0, H)
            assert rel_err(y[:L, b, half], y_ref) < TOL
            assert not y[L:, b].any()
            for s, value, w in zip(rnn.states, as_list(state_n), Gs, strict=True):
                assert rel_err(value[d, b], s_ref[s][0]) < TOL
                loss_ref = loss_ref + (s_ref[s][0] * w[d, b]).sum()
            loss_ref = loss_ref + (y_ref * G[:L, b, half]).sum()
    wrt = [x, *states, *inputs.values()]
    ours = torch.autograd.grad(loss, wrt + [p for _, p in rnn.named_parameters()])
    ref = torch.autograd.grad(loss_ref, wrt + [loop.P[n] for loop in loops
                                                for n in rnn.net.cell.PARAMS])
    for a, b in zip(ours, ref, strict=True):
        assert rel_err(a, b) < TOL


def lstm_weights_from_torch(module, rnn):
    """torch.nn.LSTM's weights as symrnn lstm's: W_k = [W_hh_k, W_ih_k], b_k = b_ih_k + b_hh_k
    (torch's gates i, f, g, o are lstm's u, f, c, o)."""
    params = {}
    for prefix in rnn.prefixes:
        k, suffix = prefix[1:].partition("_")[::2]
        tail = f"l{k}" + ("_reverse" if suffix else "")
        w_ih, w_hh = (getattr(module, f"weight_{m}_{tail}").detach() for m in ("ih", "hh"))
        bias = (getattr(module, f"bias_ih_{tail}") + getattr(module, f"bias_hh_{tail}")).detach()
        for j, gate in enumerate("ufco"):
            rows = slice(j * H, (j + 1) * H)
            params[f"{prefix}.W_{gate}"] = torch.cat([w_hh[rows], w_ih[rows]], 1).numpy()
            params[f"{prefix}.b_{gate}"] = bias[rows].numpy()
    return params


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_torch_lstm_two_layers_bidirectional_batch_first_packed(backend):
    torch.manual_seed(6)
    module = torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True,
                           dtype=F64)
    rnn = make("lstm", backend=backend, num_layers=2, bidirectional=True, batch_first=True)
    rnn.load_numpy_params(lstm_weights_from_torch(module, rnn))
    lengths = torch.tensor([2, 4, 1, 4])
    x = torch.randn(4, 4, D, dtype=F64, requires_grad=True)  # (B, T, D)
    h0, c0 = (torch.randn(4, 4, H, dtype=F64, requires_grad=True) for _ in range(2))
    results = []
    for m in (rnn, module):
        out, (h_n, c_n) = m(pack(x, lengths, batch_first=True, enforce_sorted=False), (h0, c0))
        y = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True)[0]
        loss = (y * torch.linspace(-1, 1, y.numel(), dtype=F64).view(y.shape)).sum() + (
            h_n.sin().sum() + c_n.cos().sum())
        grads = torch.autograd.grad(loss, [x, h0, c0, *m.parameters()])
        results.append((y, h_n, c_n, grads))
    (y, h_n, c_n, grads), (y_t, h_t, c_t, grads_t) = results
    for a, b in ((y, y_t), (h_n, h_t), (c_n, c_t), *zip(grads[:3], grads_t[:3], strict=True)):
        assert rel_err(a, b) < TOL
    ours = dict(zip(rnn.net.PARAMS, grads[3:], strict=True))
    theirs = dict(zip([n for n, _ in module.named_parameters()], grads_t[3:], strict=True))
    for prefix in rnn.prefixes:
        k, suffix = prefix[1:].partition("_")[::2]
        tail = f"l{k}" + ("_reverse" if suffix else "")
        for j, gate in enumerate("ufco"):
            rows = slice(j * H, (j + 1) * H)
            dW = ours[f"{prefix}.W_{gate}"]
            assert rel_err(dW[:, :H], theirs[f"weight_hh_{tail}"][rows]) < TOL
            assert rel_err(dW[:, H:], theirs[f"weight_ih_{tail}"][rows]) < TOL
            for m in ("ih", "hh"):
                assert rel_err(ours[f"{prefix}.b_{gate}"], theirs[f"bias_{m}_{tail}"][rows]) < TOL


def test_matches_torch_gru_through_interop():
    """nn.GRU's weights brought over by symrnn.interop.network_from_torch: the same outputs,
    final state (one tensor, as nn.GRU's) and gradients on a packed batch."""
    from symrnn.interop import network_from_torch

    torch.manual_seed(7)
    module = torch.nn.GRU(D, H, num_layers=2, bidirectional=True, batch_first=True, dtype=F64)
    net, params = network_from_torch(module)
    rnn = RNN(net.cell.CELL, D, H, num_layers=2, bidirectional=True, batch_first=True,
              backend="numpy", dtype=F64)
    rnn.load_numpy_params(params)
    x = torch.randn(3, 4, D, dtype=F64, requires_grad=True)
    h0 = torch.randn(4, 3, H, dtype=F64, requires_grad=True)
    results = []
    for m in (rnn, module):
        out, h_n = m(pack(x, torch.tensor([4, 1, 3]), batch_first=True, enforce_sorted=False),
                     h0)
        loss = (out.data.tanh() * torch.arange(out.data.numel(), dtype=F64).view(
            out.data.shape)).sum() + h_n.square().sum()
        results.append((out.data, h_n, *torch.autograd.grad(loss, [x, h0])))
    for a, b in zip(*results, strict=True):
        assert rel_err(a, b) < TOL


# ---------------------------------------------------------------------------------------------
# Training in a plain PyTorch loop
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["lstm_peephole", USERS["nested.toml"]], ids=cell_id)
def test_adding_problem_below_baseline(cell, backend="numpy"):
    """Adam on the adding problem (T = 10) with a Linear readout of the last output: the test
    MSE ends well below the baseline's (always predicting 1: ~0.167)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    steps, hidden = 10, 16
    rnn = RNN(cell, 2, hidden, backend=backend)  # float32, as nn.LSTM
    readout = torch.nn.Linear(rnn.net.output_size, 1)
    opt = torch.optim.Adam([*rnn.parameters(), *readout.parameters()], lr=1e-2)
    for _ in range(300):
        x, target = adding.batch(rng, 64, steps)
        y, _ = rnn(torch.from_numpy(x))
        loss = torch.nn.functional.mse_loss(readout(y[-1]).squeeze(-1), torch.from_numpy(target))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x, target = adding.batch(np.random.default_rng(1), 1000, steps)
    with torch.no_grad():
        y, _ = rnn(torch.from_numpy(x))
        mse = torch.nn.functional.mse_loss(readout(y[-1]).squeeze(-1),
                                           torch.from_numpy(target)).item()
    baseline = adding.baseline_mse(target)
    assert mse < 0.25 * baseline, (mse, baseline)


# ---------------------------------------------------------------------------------------------
# nn.LSTM's conventions
# ---------------------------------------------------------------------------------------------


def test_constructor_defaults_and_parameters():
    torch.manual_seed(0)
    rnn = RNN("lstm", D, H, num_layers=2, bidirectional=True)
    assert rnn.backend == default_backend()
    assert default_backend() == ("numba" if importlib.util.find_spec("numba") else "numpy")
    names = [n for n, _ in rnn.named_parameters()]
    assert names == [n.replace(".", "_") for n in rnn.net.PARAMS]
    assert "l1_reverse_W_f" in names
    assert all(p.dtype == torch.float32 for p in rnn.parameters())
    shapes = rnn.net.param_shapes()
    assert all(tuple(p.shape) == tuple(shapes[n])
               for n, p in zip(rnn.net.PARAMS, rnn.parameters(), strict=True))
    bound = 1 / np.sqrt(H)
    assert all(p.abs().max() <= bound for p in rnn.parameters())
    torch.manual_seed(0)
    again = RNN("lstm", D, H, num_layers=2, bidirectional=True)
    assert all(torch.equal(p, q) for p, q in zip(rnn.parameters(), again.parameters(), strict=True))
    assert "RNN('lstm', 2, 3, num_layers=2, bidirectional=True" in repr(rnn)


def test_float32_and_double():
    rnn = make("gru", dtype=None).float()
    x = random_x().float()
    y, h_n = rnn(x)  # one state: a single tensor, as nn.GRU
    assert y.dtype == h_n.dtype == torch.float32
    assert y.shape == (T, B, H) and h_n.shape == (1, B, H)
    y64, h64 = rnn.double()(x.double())
    assert y64.dtype == torch.float64
    assert rel_err(y64, y) < 1e-5
    y64.sum().backward()
    assert all(p.grad.dtype == torch.float64 for p in rnn.parameters())


def test_batch_first_and_unbatched_are_layouts():
    rnn = make("lstm", num_layers=2, bidirectional=True)
    first = make("lstm", num_layers=2, bidirectional=True, batch_first=True)
    first.load_numpy_params(rnn.numpy_params())
    x = random_x(steps=4, batch=3)
    state = tuple(random_state(rnn, 3))
    y, (h, c) = rnn(x, state)
    y_bf, (h_bf, c_bf) = first(x.transpose(0, 1), state)
    assert torch.equal(y_bf.transpose(0, 1), y) and torch.equal(h_bf, h) and torch.equal(c_bf, c)
    y1, (h1, c1) = rnn(x[:, 1], tuple(s[:, 1] for s in state))  # (T, D): one sequence
    assert y1.shape == (4, 2 * H) and h1.shape == (4, H)
    assert rel_err(y1, y[:, 1]) < 1e-14 and rel_err(h1, h[:, 1]) < 1e-14


def test_extra_inputs_batch_first():
    rnn = make("gru_d", batch_first=True)
    x, dt = random_x(), random_inputs(rnn, T, B)["dt"]
    y, _ = rnn(x.transpose(0, 1), dt=dt.transpose(0, 1))
    time_major = make("gru_d")
    time_major.load_numpy_params(rnn.numpy_params())
    assert torch.equal(y.transpose(0, 1), time_major(x, dt=dt)[0])


def test_padded_dt_beside_packed_input():
    """Beside a packed input an other input may also be padded, in the module's layout."""
    rnn = make("gru_d", batch_first=True)
    lengths = torch.tensor([1, 3])
    x, dt = random_x(), random_inputs(rnn, T, B)["dt"]
    packed = pack(x, lengths, enforce_sorted=False)
    y, h = rnn(packed, dt=pack(dt, lengths, enforce_sorted=False))
    y2, h2 = rnn(packed, dt=dt.transpose(0, 1))
    assert torch.equal(y.data, y2.data) and torch.equal(h, h2)
    with pytest.raises(ValueError, match=r"dt: expected shape \(2, 3, 1\) like the input"):
        rnn(packed, dt=dt)


def test_copy_and_pickle():
    """copy.deepcopy and pickle (torch.save of a whole model) make the network anew."""
    import copy
    import pickle

    rnn = make(USERS["nested.toml"], num_layers=2)
    x = random_x()
    for other in (copy.deepcopy(rnn), pickle.loads(pickle.dumps(rnn))):
        assert other.net is not rnn.net
        assert torch.equal(other(x)[0], rnn(x)[0])


def test_numpy_params_run_without_torch():
    """The trained module's parameters run in the NumPy network as they are."""
    rnn = make("lstm", num_layers=2)
    x = random_x(steps=4)
    y, (h, c) = rnn(x)
    y_np, state_T, _ = rnn.net.forward(rnn.numpy_params(), x.numpy())
    assert np.allclose(y_np, y.detach().numpy(), rtol=0, atol=1e-14)
    assert np.allclose(state_T["l1.c"], c[1].detach().numpy(), rtol=0, atol=1e-14)


def test_frozen_parameters_and_no_grad():
    rnn = make("rnn")
    first = next(rnn.parameters())
    first.requires_grad_(False)
    y, _ = rnn(random_x().requires_grad_())
    y.sum().backward()
    assert first.grad is None
    assert all(p.grad is not None for p in rnn.parameters() if p.requires_grad)
    with torch.no_grad():
        y, _ = rnn(random_x())
    assert not y.requires_grad


def test_empty_batch_and_no_steps():
    rnn = make("lstm")
    x = torch.zeros(4, 0, D, dtype=F64, requires_grad=True)
    y, (h, c) = rnn(x)
    assert y.shape == (4, 0, H) and h.shape == (1, 0, H)
    y.sum().backward()
    assert all(not p.grad.any() for p in rnn.parameters())
    state = tuple(s.requires_grad_() for s in random_state(rnn, B))
    y, (h, c) = rnn(torch.zeros(0, B, D, dtype=F64), state)  # no steps: the states as given
    assert y.shape == (0, B, H) and torch.equal(h, state[0]) and torch.equal(c, state[1])
    (h.sum() + 2 * c.sum()).backward()
    assert torch.equal(state[1].grad, torch.full_like(state[1], 2))


def test_output_changed_in_place_is_caught():
    """y may share memory with what backward reads: autograd's check of saved tensors."""
    rnn = make("lstm")
    y, _ = rnn(random_x().requires_grad_())
    y.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.sum().backward()


# ---------------------------------------------------------------------------------------------
# Errors: one line each
# ---------------------------------------------------------------------------------------------


def one_line(excinfo):
    return "\n" not in str(excinfo.value)


def test_cpu_only():
    rnn = make("lstm")
    with pytest.raises(ValueError, match="CPU tensors only") as e:
        rnn(torch.zeros(T, B, D, dtype=F64, device="meta"))
    assert one_line(e)
    with pytest.raises(ValueError, match="CPU tensors only"):
        rnn(random_x(), (torch.zeros(1, B, H, dtype=F64, device="meta"),) * 2)
    with pytest.raises(ValueError, match="CPU only"):
        RNN("lstm", D, H, device="cuda")
    with pytest.raises(ValueError, match="CPU only") as e:
        make("gru").to("meta")(random_x())
    assert one_line(e)


def test_dtype_errors():
    rnn = make("lstm")
    with pytest.raises(ValueError, match=r"dtype torch.float32, but the parameters are "
                                         r"torch.float64") as e:
        rnn(random_x().float())
    assert one_line(e)
    with pytest.raises(ValueError, match="float32 or torch.float64"):
        RNN("lstm", D, H, dtype=torch.float16)
    with pytest.raises(ValueError, match="all be torch.float32 or all torch.float64"):
        make("lstm").half()(random_x().half())
    with pytest.raises(ValueError, match="dtype torch.int64"):
        rnn(torch.zeros(T, B, D, dtype=torch.int64))


def test_shape_and_input_errors():
    rnn = make("lstm")
    with pytest.raises(ValueError, match="expected 2 features, got 5") as e:
        rnn(torch.zeros(T, B, 5, dtype=F64))
    assert one_line(e)
    with pytest.raises(ValueError, match="3-D tensor"):
        rnn(torch.zeros(1, T, B, D, dtype=F64))
    with pytest.raises(ValueError, match="a tuple of 2 tensors"):
        rnn(random_x(), torch.zeros(1, B, H, dtype=F64))
    with pytest.raises(ValueError, match=r"state 'c': expected shape \(1, 2, 3\)"):
        rnn(random_x(), (torch.zeros(1, B, H, dtype=F64), torch.zeros(2, B, H, dtype=F64)))
    with pytest.raises(ValueError, match="unexpected"):
        rnn(random_x(), dt=torch.zeros(T, B, 1, dtype=F64))
    gru_d = make("gru_d")
    with pytest.raises(ValueError, match=r"missing input\(s\) \['dt'\]") as e:
        gru_d(random_x())
    assert one_line(e)
    with pytest.raises(ValueError, match=r"dt: expected shape \(3, 2, 1\)"):
        gru_d(random_x(), dt=torch.zeros(T, B, 2, dtype=F64))


def test_docstring_example_runs(monkeypatch):
    """The module's usage example, as written (on the NumPy backend: no compile here)."""
    import symrnn.torch

    monkeypatch.setattr(symrnn.torch, "default_backend", lambda: "numpy")
    doc = symrnn.torch.__doc__
    example = doc.split("::\n", 1)[1].split("\nThe kernels")[0]
    namespace = {}
    exec("\n".join(line[4:] for line in example.splitlines()), namespace)
    assert namespace["out"].data.shape == (10 + 3 + 7 + 1, 16)
    assert namespace["h_n"].shape == (4, 4, 16)


def test_module_name_leaves_torch_alone():
    """symrnn/torch.py imports PyTorch itself, first thing in a new process too; torch_cell and
    interop still see PyTorch."""
    code = ("import symrnn.torch, symrnn.torch_cell, symrnn.interop, torch; "
            "assert symrnn.torch.torch is torch is symrnn.torch_cell.torch; "
            "assert torch.nn.LSTM and symrnn.torch.RNN")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
