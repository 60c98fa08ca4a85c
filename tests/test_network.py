"""The network module (generated/network.py): stacked and bidirectional layers of any cell.

Gradients against central differences (float64), forward against a reference that runs the cell
module on one sequence at a time (no lengths, no reverse: it slices and flips), a one-layer
network against the cell itself, batch_first against time-major, clear errors, the committed
file, and the command line.
"""

import ast
import io
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import ROOT, _fd_array, load_module, max_rel_err, needs_numba

import symrnn
from symrnn.api import load_network, network_source

network = load_network()

T, B, D, H = 4, 3, 2, 3  # all different, so that a transposed axis cannot hide
LENGTHS = np.array([4, 0, 2])  # a full sequence, an empty one and one in between
SIZES = {"lstmp": {"P": 5}}  # the cells' sizes other than D and H
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def make_network(name, backend="numpy", **options):
    return network.Network(load_module(name, backend), D, H, **SIZES.get(name, {}), **options)


def random_problem(net, seed=0):
    """Random params (not init: larger), x, state0, other inputs and loss weights G (for y) and
    Gs (for state_T), in the network's layout, for B sequences of T steps."""
    rng = np.random.default_rng(seed)
    params = {name: 0.5 * rng.standard_normal(shape)
              for name, shape in net.param_shapes().items()}
    layout = (B, T) if net.batch_first else (T, B)
    x = rng.standard_normal((*layout, net.input_size))
    widths = {key: _size(net, key.split(".")[1]) for key in net.STATES}  # "l0.c" -> H
    state0 = {key: 0.5 * rng.standard_normal((B, widths[key])) for key in net.STATES}
    Gs = {key: rng.standard_normal((B, widths[key])) for key in net.STATES}
    inputs = {name: rng.uniform(0.1, 2.0, (*layout, _size(net, name)))
              for name in net.cell.INPUTS[1:]}
    G = rng.standard_normal((*layout, net.output_size))
    return params, x, state0, inputs, G, Gs


def _size(net, name):
    """The size of a cell's state or input, as a number (for these tests' D, H, P)."""
    size = net.cell.SIZES[name]
    return size if isinstance(size, int) else {"D": net.input_size, "H": net.hidden_size,
                                               **net.sizes}[size]


def loss(net, params, x, state0, inputs, G, Gs, lengths):
    y, state_T, _ = net.forward(params, x, state0, lengths=lengths, **inputs)
    return float(np.sum(y * G) + sum(np.sum(state_T[s] * Gs[s]) for s in net.STATES))


# --------------------------------------------------------------------------------------------
# Gradients: backward against central differences of forward.
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lstm", "gru", "lstmp", "gru_d"])
def test_gradients_of_a_two_layer_bidirectional_network(name, backend):
    net = make_network(name, backend, num_layers=2, bidirectional=True)
    params, x, state0, inputs, G, Gs = random_problem(net)
    _, _, cache = net.forward(params, x, state0, lengths=LENGTHS, **inputs)
    grads, dx, dstate0, *dinputs = net.backward(params, cache, G, Gs)
    assert list(grads) == list(net.PARAMS) and list(dstate0) == list(net.STATES)
    assert len(dinputs) == (1 if inputs else 0)

    def fd(change):
        return lambda value: loss(net, *change(value), G, Gs, LENGTHS)

    errors = {}
    for key in net.PARAMS:
        numeric = _fd_array(fd(lambda v, key=key: ({**params, key: v}, x, state0, inputs)),
                            params[key])
        errors[f"params[{key!r}]"] = max_rel_err(grads[key], numeric)
    numeric = _fd_array(fd(lambda v: (params, v, state0, inputs)), x)
    errors["x"] = max_rel_err(dx, numeric)
    assert np.all(dx[LENGTHS[1]:, 1] == 0) and np.all(dx[LENGTHS[2]:, 2] == 0)  # padded steps
    for key in net.STATES:
        numeric = _fd_array(fd(lambda v, key=key: (params, x, {**state0, key: v}, inputs)),
                            state0[key])
        errors[f"state0[{key!r}]"] = max_rel_err(dstate0[key], numeric)
    for key in inputs:
        numeric = _fd_array(fd(lambda v, key=key: (params, x, state0, {**inputs, key: v})),
                            inputs[key])
        errors[key] = max_rel_err(dinputs[0][key], numeric)
    bad = {k: e for k, e in errors.items() if not e < 1e-6}
    assert not bad, bad


# --------------------------------------------------------------------------------------------
# Forward against an independent reference, and against the cell itself.
# --------------------------------------------------------------------------------------------


def reference_forward(net, params, x, state0, lengths, inputs):
    """The network's y and state_T, time-major, from the cell module alone: each sequence is
    run by itself over its own L_b steps (flipped for a reverse direction), layer by layer."""
    cell, steps, batch = net.cell, x.shape[0], x.shape[1]
    layer_input, state_T = x, {}
    for layer in net.prefixes:
        outputs = []
        for direction, prefix in enumerate(layer):
            cell_params = {n: params[f"{prefix}.{n}"] for n in cell.PARAMS}
            y = None
            for b in range(batch):
                own = slice(0, lengths[b])
                order = slice(None, None, -1 if direction == 1 else 1)
                start = {s: state0[f"{prefix}.{s}"][b:b + 1] for s in cell.STATES}
                if lengths[b] == 0:
                    y_b, end = None, start
                else:
                    y_b, end, _ = cell.forward(
                        cell_params, layer_input[own, b:b + 1][order], start,
                        **{n: v[own, b:b + 1][order] for n, v in inputs.items()})
                if y is None:
                    y = np.zeros((steps, batch, _size(net, cell.STATES[0])))
                if y_b is not None:
                    y[own, b] = y_b[order][:, 0]
                for s in cell.STATES:
                    state_T.setdefault(f"{prefix}.{s}", np.zeros_like(state0[f"{prefix}.{s}"]))
                    state_T[f"{prefix}.{s}"][b] = end[s][0]
            outputs.append(y)
        layer_input = np.concatenate(outputs, axis=-1)
    return layer_input, state_T


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lstm", "gru_d", "lstmp"])
def test_forward_agrees_with_a_reference_built_from_the_cell(name, backend):
    net = make_network(name, backend, num_layers=3, bidirectional=True)
    params, x, state0, inputs, _, _ = random_problem(net, seed=1)
    y, state_T, _ = net.forward(params, x, state0, lengths=LENGTHS, **inputs)
    y_ref, state_T_ref = reference_forward(net, params, x, state0, LENGTHS, inputs)
    assert y.shape == (T, B, net.output_size)
    assert max_rel_err(y, y_ref) < 1e-12
    assert np.all(y[LENGTHS[2]:, 2] == 0) and np.all(y[:, 1] == 0)  # padded steps
    assert list(state_T) == list(net.STATES)
    for key in net.STATES:
        assert max_rel_err(state_T[key], state_T_ref[key]) < 1e-12, key


@pytest.mark.parametrize("lengths", [None, LENGTHS])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lstm", "gru_d"])
def test_one_unidirectional_layer_is_the_cell_itself(name, backend, lengths):
    net = make_network(name, backend)
    params, x, state0, inputs, G, Gs = random_problem(net, seed=2)
    assert net.PARAMS == tuple(f"l0.{n}" for n in net.cell.PARAMS)
    assert net.output_size == _size(net, net.cell.STATES[0])
    y, state_T, cache = net.forward(params, x, state0, lengths=lengths, **inputs)
    grads, dx, dstate0, *dinputs = net.backward(params, cache, G, Gs)

    def cell_dict(flat):
        return {k.split(".", 1)[1]: v for k, v in flat.items()}

    cell = net.cell
    y1, state_T1, cache1 = cell.forward(cell_dict(params), x, cell_dict(state0),
                                        lengths=lengths, **inputs)
    grads1, dx1, dstate01, *dinputs1 = cell.backward(cell_dict(params), cache1, G, cell_dict(Gs))
    assert np.array_equal(y, y1) and np.array_equal(dx, dx1)
    for a, b in ((state_T, state_T1), (grads, grads1), (dstate0, dstate01)):
        assert cell_dict(a).keys() == b.keys()
        assert all(np.array_equal(cell_dict(a)[k], b[k]) for k in b)
    for a, b in zip(dinputs, dinputs1, strict=True):
        assert all(np.array_equal(a[k], b[k]) for k in b)


@pytest.mark.parametrize("name", ["lstm", "gru_d"])
def test_batch_first_is_the_transposed_time_major_run(name):
    time_major = make_network(name, num_layers=2, bidirectional=True)
    batch_first = make_network(name, num_layers=2, bidirectional=True, batch_first=True)
    params, x, state0, inputs, G, Gs = random_problem(time_major, seed=3)

    def transposed(a):
        return a.swapaxes(0, 1)

    y, state_T, cache = time_major.forward(params, x, state0, lengths=LENGTHS, **inputs)
    grads, dx, dstate0, *dinputs = time_major.backward(params, cache, G, Gs)
    inputs_bf = {k: transposed(v) for k, v in inputs.items()}
    y_bf, state_T_bf, cache_bf = batch_first.forward(params, transposed(x), state0,
                                                     lengths=LENGTHS, **inputs_bf)
    grads_bf, dx_bf, dstate0_bf, *dinputs_bf = batch_first.backward(params, cache_bf,
                                                                    transposed(G), Gs)
    assert y_bf.shape == (B, T, batch_first.output_size)
    assert np.array_equal(transposed(y_bf), y) and np.array_equal(transposed(dx_bf), dx)
    for a, b in ((state_T, state_T_bf), (grads, grads_bf), (dstate0, dstate0_bf)):
        assert all(np.array_equal(a[k], b[k]) for k in a)
    for a, b in zip(dinputs, dinputs_bf, strict=True):
        assert all(np.array_equal(a[k], transposed(b[k])) for k in a)


@pytest.mark.parametrize("steps, batch", [(0, 3), (4, 0)])
def test_empty_sequences_and_batches(steps, batch):
    net = make_network("lstm", num_layers=2, bidirectional=True)
    params = net.init_params(rng=0)
    x = np.zeros((steps, batch, D))
    y, state_T, cache = net.forward(params, x)
    assert y.shape == (steps, batch, net.output_size)
    assert all(v.shape == (batch, H) for v in state_T.values())
    grads, dx, dstate0 = net.backward(params, cache, np.ones_like(y))
    assert dx.shape == x.shape and all(not g.any() for g in grads.values())


# --------------------------------------------------------------------------------------------
# Names, shapes, init.
# --------------------------------------------------------------------------------------------


def test_flat_names_and_shapes():
    net = make_network("lstmp", num_layers=2, bidirectional=True)
    P = SIZES["lstmp"]["P"]
    assert net.sizes == {"P": P} and net.output_size == 2 * P
    cell_params = net.cell.PARAMS
    prefixes = ("l0", "l0_reverse", "l1", "l1_reverse")
    assert net.PARAMS == tuple(f"{p}.{n}" for p in prefixes for n in cell_params)
    assert net.STATES == tuple(f"{p}.{s}" for p in prefixes for s in ("a", "c"))
    shapes = net.param_shapes()
    assert shapes["l0.W_f"] == (H, P + D) and shapes["l1_reverse.W_f"] == (H, P + 2 * P)
    assert shapes["l1.W_p"] == (P, H)
    for attribute, value in (("input_size", D), ("hidden_size", H), ("num_layers", 2),
                             ("bidirectional", True), ("batch_first", False)):
        assert getattr(net, attribute) == value
    assert "lstmp" in repr(net) and "num_layers=2" in repr(net)


def test_init_params_is_deterministic_and_each_direction_its_own():
    net = make_network("gru", num_layers=2, bidirectional=True)
    one, two = net.init_params(rng=7), net.init_params(rng=7)
    assert list(one) == list(net.PARAMS)
    assert all(np.array_equal(one[k], two[k]) for k in one)
    assert not np.array_equal(one["l0.W_u"], one["l0_reverse.W_u"])
    assert not np.array_equal(one["l0.b_u"], net.init_params(rng=8)["l0.b_u"])
    bound = 1 / np.sqrt(H)
    assert all(np.abs(v).max() <= bound for v in one.values())
    single = net.init_params(rng=0, dtype=np.float32)
    assert all(v.dtype == np.float32 and v.shape == net.param_shapes()[k]
               for k, v in single.items())
    np.savez(io.BytesIO(), **one)  # flat names: savez takes them as they are


def test_float32_runs_in_float32():
    net = make_network("lstm", num_layers=2, bidirectional=True)
    params = net.init_params(rng=0, dtype=np.float32)
    x = np.ones((T, B, D), dtype=np.float32)
    y, state_T, cache = net.forward(params, x, lengths=LENGTHS)
    grads, dx, _ = net.backward(params, cache, np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())


@needs_numba
def test_api_network_and_load_network():
    assert load_network() is load_network()
    net = symrnn.network("lstmp", D, H, backend="numba", num_layers=2, bidirectional=True, P=5)
    assert isinstance(net, symrnn.load_network().Network)
    assert net.cell.CELL == "lstmp" and net.output_size == 10
    numpy_net = symrnn.network("lstmp", D, H, num_layers=2, bidirectional=True, P=5)
    params, x, state0, inputs, G, Gs = random_problem(net)
    y, _, _ = net.forward(params, x, state0, lengths=LENGTHS)
    y_numpy, _, _ = numpy_net.forward(params, x, state0, lengths=LENGTHS)
    assert max_rel_err(y, y_numpy) < 1e-12
    with pytest.raises(ValueError, match="backend"):
        symrnn.network("lstm", D, H, backend="jax")


# --------------------------------------------------------------------------------------------
# Bad input: one clear line.
# --------------------------------------------------------------------------------------------


def one_line_error(call, *words):
    with pytest.raises(ValueError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message, message
    for word in words:
        assert word in message, (word, message)
    return message


def test_bad_networks():
    lstm, lstmp, gru_d = (load_module(n) for n in ("lstm", "lstmp", "gru_d"))
    one_line_error(lambda: network.Network(np, D, H), "cell", "forward")
    one_line_error(lambda: network.Network(lstm, 0, H), "input_size", "0")
    one_line_error(lambda: network.Network(lstm, D, 2.0), "hidden_size")
    one_line_error(lambda: network.Network(lstm, D, H, num_layers=0), "num_layers")
    one_line_error(lambda: network.Network(lstm, D, H, bidirectional="yes"), "bidirectional")
    one_line_error(lambda: network.Network(lstmp, D, H), "P=")
    one_line_error(lambda: network.Network(lstm, D, H, P=3), "P")
    one_line_error(lambda: network.Network(lstmp, D, H, P=0), "P")
    network.Network(gru_d, D, H, num_layers=2)  # dt (size 1) goes to every layer


def test_bad_params():
    net = make_network("lstm", num_layers=2, bidirectional=True)
    params, x, state0, _, _, _ = random_problem(net)
    one_line_error(lambda: net.forward([], x), "params", "dict")
    missing = {k: v for k, v in params.items() if k != "l1_reverse.b_o"}
    one_line_error(lambda: net.forward(missing, x), "missing", "l1_reverse.b_o")
    one_line_error(lambda: net.forward({**params, "l2.W_f": params["l1.W_f"]}, x),
                   "unexpected", "l2.W_f")
    # a layer-1 weight made for the input x instead of the layer below
    wrong = {**params, "l1.W_f": load_module("lstm").init_params(D, H)["W_f"]}
    one_line_error(lambda: net.forward(wrong, x), "'l1.W_f'", str((H, H + 2 * H)),
                   str((H, H + D)))
    one_line_error(lambda: net.forward({**params, "l0.b_f": params["l0.b_f"].astype(np.float32)},
                                       x), "l0.b_f", "float32")
    one_line_error(lambda: net.forward({**params, "l0.b_f": [0.0] * H}, x), "l0.b_f")


def test_bad_inputs_and_states():
    net = make_network("lstm", num_layers=2, bidirectional=True)
    params, x, state0, _, G, Gs = random_problem(net)
    one_line_error(lambda: net.forward(params, x[0]), "x", "(T, B, 2)")
    one_line_error(lambda: net.forward(params, x[..., :1]), "x", "(T, B, 2)")
    one_line_error(lambda: net.forward(params, x.tolist()), "x", "list")
    one_line_error(lambda: net.forward(params, x, {"a": state0["l0.a"]}), "state0", "l0.a")
    short = {**state0, "l1_reverse.c": state0["l1_reverse.c"][:1]}
    one_line_error(lambda: net.forward(params, x, short), "state0['l1_reverse.c']",
                   str((B, H)))
    one_line_error(lambda: net.forward(params, x, dt=x[..., :1]), "dt", "unexpected")
    batch_first = make_network("lstm", batch_first=True)
    one_line_error(lambda: batch_first.forward(batch_first.init_params(), x[..., :1]),
                   "(B, T, 2)")
    gru_d = make_network("gru_d")
    one_line_error(lambda: gru_d.forward(gru_d.init_params(), x), "dt", "missing")
    one_line_error(lambda: gru_d.forward(gru_d.init_params(), x, dt=x), "dt", str((T, B, 1)))

    y, _, cache = net.forward(params, x, state0, lengths=LENGTHS)
    one_line_error(lambda: net.backward(params, cache, G[:, :, :H]), "dy", str(G.shape))
    one_line_error(lambda: net.backward(params, cache, G[1:]), "dy", str(G.shape))
    one_line_error(lambda: net.backward(params, {"x": x}, G), "cache")
    other_cache = make_network("lstm", num_layers=1)
    _, _, small_cache = other_cache.forward(other_cache.init_params(), x)
    one_line_error(lambda: net.backward(params, small_cache, G), "cache")
    one_line_error(lambda: net.backward(params, cache, G, {"l0.a": Gs["l0.a"]}), "dstate_T")


def test_bad_lengths():
    net = make_network("gru", num_layers=2, bidirectional=True)
    params, x, *_ = random_problem(net)
    for lengths in (np.array([1, 2, T + 1]), np.array([-1, 2, 3]), np.array([1, 2]),
                    np.array([1.0, 2.0, 3.0]), np.array([[1, 2, 3]])):
        one_line_error(lambda lengths=lengths: net.forward(params, x, lengths=lengths),
                       "lengths")


# --------------------------------------------------------------------------------------------
# The committed module and the command line.
# --------------------------------------------------------------------------------------------


def test_committed_network_module_is_fresh_and_imports_only_numpy():
    committed = (ROOT / "generated" / "network.py").read_bytes()
    assert committed == network_source().encode("utf-8"), (
        "generated/network.py drifted: run `symrnn generate --network` at the repo root")
    assert committed.startswith(b"# Generated by symrnn ")
    imported = set()
    for node in ast.walk(ast.parse(committed)):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported == {"numpy"}


def test_rendering_is_deterministic():
    assert network_source() == network_source()
    proc = subprocess.run([sys.executable, "-c",
                           "import sys; from symrnn.api import network_source; "
                           "sys.stdout.write(network_source())"],
                          capture_output=True, text=True, env={**_env(), "PYTHONHASHSEED": "99"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == network_source()


def _env():
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def symrnn_cli(args, cwd):
    return subprocess.run([sys.executable, "-m", "symrnn", *args], cwd=cwd, env=_env(),
                          capture_output=True, text=True, timeout=180)


SHIPPED = textwrap.dedent("""
    import sys
    import numpy as np
    from generated import lstm, network
    net = network.Network(lstm, 3, 4, num_layers=2, bidirectional=True, batch_first=True)
    params = net.init_params(rng=0)
    y, state_T, cache = net.forward(params, np.ones((2, 5, 3)), lengths=np.array([5, 2]))
    grads, dx, dstate0 = net.backward(params, cache, np.ones_like(y))
    print(y.shape, dx.shape, len(grads), "sympy" in sys.modules, "symrnn" in sys.modules)
""")


def test_generate_network_writes_a_module_that_ships_without_symrnn(tmp_path):
    proc = symrnn_cli(["generate", "lstm", "--network"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "network.py" in proc.stdout and "lstm.py" in proc.stdout
    written = tmp_path / "generated" / "network.py"
    assert written.read_text(encoding="utf-8") == network_source()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    shipped = subprocess.run([sys.executable, "-c", SHIPPED], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=120)
    assert shipped.returncode == 0, shipped.stderr
    assert shipped.stdout.split() == ["(2,", "5,", "8)", "(2,", "5,", "3)", "32", "False",
                                      "False"]

    assert symrnn_cli(["generate", "lstm", "--network", "--check"], tmp_path).returncode == 0
    written.write_text(written.read_text() + "# a local edit\n")
    proc = symrnn_cli(["generate", "lstm", "--network", "--check"], tmp_path)
    assert proc.returncode == 1 and "network.py" in proc.stdout
    mine = "# my own network\n"
    written.write_text(mine)  # not ours: left alone
    proc = symrnn_cli(["generate", "--network"], tmp_path)
    assert proc.returncode == 1 and "network.py" in proc.stderr
    assert written.read_text() == mine


def test_generate_all_includes_the_network_module(tmp_path):
    proc = symrnn_cli(["generate", "--all", "-o", "out"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "network.py").read_text(encoding="utf-8") == network_source()
    proc = symrnn_cli(["generate", "--network", "-o", "alone"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "alone").iterdir()) == ["__init__.py",
                                                                      "network.py"]

