"""Cells of the literature and the grammar that writes them (issue 13): the built-ins lstm_ln and
slstm against their papers' equations written here directly (PyTorch's LayerNorm, NumPy), the
stabiliser that keeps slstm finite in float32, the derivative at every kink against PyTorch, and
the four bugs that random cells of the old grammar hit, each as its reproduction."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from conftest import FD_TOL, gradient_errors, needs_numba

import symrnn
from symrnn.activations import elu, relu
from symrnn.cell import CellBuilder, CellError
from symrnn.spec import parse_spec

SPECS = Path(__file__).parent / "specs"
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def _fd_ok(spec, backend, **sizes):
    """Every gradient of the generated module agrees with central differences (float64)."""
    mod = symrnn.load(spec, backend)
    errors = gradient_errors(mod, **sizes)
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert not bad, bad
    return errors


@pytest.mark.parametrize("name", ["lstm_ln", "slstm"])
def test_the_readme_toml_is_the_builtin(name):
    """The TOML the README shows, as the paper writes the cell, generates the built-in's module."""
    spec = SPECS / f"{name}.toml"
    assert symrnn.generate_source(str(spec), origin=name) == symrnn.generate_source(name)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    equations = [line.strip() for line in spec.read_text().splitlines() if line.startswith("  \"")]
    assert all(eq in readme for eq in equations), f"README does not show {spec.name}"


def test_lstm_ln_matches_layernorm_lstm_written_in_pytorch():
    torch = pytest.importorskip("torch")
    lstm_ln = symrnn.load("lstm_ln")
    T, B, D, H = 6, 3, 4, 5
    rng = np.random.default_rng(1)
    params = {k: rng.standard_normal(v) * 0.5 for k, v in lstm_ln.param_shapes(D, H).items()}
    x = rng.standard_normal((T, B, D))
    state0 = {"a": rng.standard_normal((B, H)), "c": rng.standard_normal((B, H))}
    y, state_T, _ = lstm_ln.forward(params, x, state0)

    P = {k: torch.tensor(v) for k, v in params.items()}
    norms = {}
    for k in "fucos":  # one torch.nn.LayerNorm per gate and one for the state
        norm = torch.nn.LayerNorm(H, eps=1e-5, dtype=torch.float64)
        with torch.no_grad():
            norm.weight.copy_(P[f"g_{k}"])
            norm.bias.copy_(P[f"b_{k}"])
        norms[k] = norm
    a, c = torch.tensor(state0["a"]), torch.tensor(state0["c"])
    outputs = []
    with torch.no_grad():
        for x_t in torch.tensor(x):
            v = torch.cat([a, x_t], 1)
            f, u, o = (torch.sigmoid(norms[k](v @ P[f"W_{k}"].T)) for k in "fuo")
            c = f * c + u * torch.tanh(norms["c"](v @ P["W_c"].T))
            a = o * torch.tanh(norms["s"](c))
            outputs.append(a)
    np.testing.assert_allclose(y, torch.stack(outputs).numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(state_T["c"], c.numpy(), rtol=1e-10, atol=1e-12)


def _slstm_by_hand(params, x, state0):
    """Beck et al. 2024, eqs. 8-17 (exponential input and forget gates), written in NumPy."""
    h, c, n, m = (state0[s] for s in "hcnm")

    def pre(k, v):
        return v @ params[f"W_{k}"].T + params[f"b_{k}"]
    hs = []
    for x_t in x:
        v = np.concatenate([h, x_t], axis=1)
        z, o = np.tanh(pre("z", v)), 1 / (1 + np.exp(-pre("o", v)))
        i_tilde, f_tilde = pre("i", v), pre("f", v)
        m_new = np.maximum(f_tilde + m, i_tilde)
        i, f = np.exp(i_tilde - m_new), np.exp(f_tilde + m - m_new)
        c, n, m = f * c + i * z, f * n + i, m_new
        h = o * c / n
        hs.append(h)
    return np.stack(hs), {"h": h, "c": c, "n": n, "m": m}


@pytest.mark.parametrize("backend", BACKENDS)
def test_slstm_matches_the_paper_written_in_numpy(backend):
    slstm = symrnn.load("slstm", backend)
    T, B, D, H = 7, 2, 3, 4
    rng = np.random.default_rng(2)
    params = {k: rng.standard_normal(v) for k, v in slstm.param_shapes(D, H).items()}
    x = rng.standard_normal((T, B, D))
    state0 = {"h": rng.standard_normal((B, H)), "c": rng.standard_normal((B, H)),
              "n": np.ones((B, H)), "m": np.zeros((B, H))}
    y, state_T, _ = slstm.forward(params, x, state0)
    y_ref, state_ref = _slstm_by_hand(params, x, state0)
    np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-14)
    for s in "hcnm":
        np.testing.assert_allclose(state_T[s], state_ref[s], rtol=1e-12, atol=1e-14)


def _without_stabiliser():
    """sLSTM with i = exp(i~), f = exp(f~) and no m: what the stabiliser state prevents."""
    cell = CellBuilder("slstm_raw", states=("h", "c", "n"))
    h_prev, c_prev, n_prev, x = cell.prev("h"), cell.prev("c"), cell.prev("n"), cell.x
    z = cell.let("z", symrnn.activations.tanh(cell.affine("W_z", [h_prev, x], "b_z")))
    o = cell.let("o", symrnn.activations.sigmoid(cell.affine("W_o", [h_prev, x], "b_o")))
    i = cell.let("i", sp.exp(cell.affine("W_i", [h_prev, x], "b_i")))
    f = cell.let("f", sp.exp(cell.affine("W_f", [h_prev, x], "b_f")))
    c = cell.let("c", f * c_prev + i * z)
    n = cell.let("n", f * n_prev + i)
    cell.let("h", o * c / n)
    return cell.build()


@pytest.mark.parametrize("backend", BACKENDS)
def test_slstm_float32_over_10000_steps_stays_finite_thanks_to_its_stabiliser(backend):
    """symrnn vanish's run (T = 10,000, float32, forget bias 1): no overflow, NaN or warning;
    the same cell without the stabiliser state m overflows on the same inputs."""
    from symrnn.vanish import measure

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow / invalid-value warning fails the test
        decay = measure(symrnn.load("slstm", backend), steps=10_000, hidden=16, input_size=4,
                        dtype=np.float32, forget_bias=1.0)
    assert np.all(np.isfinite(decay.dx)) and decay.dx[0] > 0
    raw = symrnn.load(_without_stabiliser(), backend)
    rng = np.random.default_rng(0)
    params = raw.init_params(4, 16, rng=rng, dtype=np.float32)
    params["b_f"] += 1  # as vanish does
    x = rng.standard_normal((10_000, 1, 4)).astype(np.float32)
    with np.errstate(all="ignore"):
        y, _, _ = raw.forward(params, x)
    assert not np.all(np.isfinite(y)), "without m the exponential gates should overflow"


@pytest.mark.parametrize("name", ["lstm_ln", "slstm"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_new_builtins_match_finite_differences(name, backend):
    _fd_ok(name, backend)


# -- the derivative at a kink: one convention, PyTorch's ------------------------------------


def _kink_cell(name, expr):
    """a = expr(u, v) + v / 2 (v read either way: the comparison is of u's and v's gradients)."""
    cell = CellBuilder(name, states=("a",))
    u, v = cell.affine("W_u", [cell.x], "b_u"), cell.affine("W_v", [cell.x], "b_v")
    cell.let("a", expr(u, v) + v / 2)
    return cell.build()


KINKS = {  # name: (the cell's equation, its PyTorch form)
    "abs": (lambda u, v: sp.Abs(u), lambda u, v, torch: torch.abs(u)),
    "max": (lambda u, v: sp.Max(u, v), lambda u, v, torch: torch.maximum(u, v)),
    "min": (lambda u, v: sp.Min(u, v), lambda u, v, torch: torch.minimum(u, v)),
    "relu": (lambda u, v: relu(u), lambda u, v, torch: torch.relu(u)),
    "elu": (lambda u, v: elu(u), lambda u, v, torch: torch.nn.functional.elu(u)),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(KINKS))
def test_derivative_at_a_kink_is_pytorchs(name, backend):
    """At u = 0 (abs, relu, elu) and at a tie u = v (max, min), the generated backward gives the
    gradient PyTorch's autograd gives there (abs: 0, max/min: half to each, relu: 0, elu: 1)."""
    torch = pytest.importorskip("torch")
    ours, theirs = KINKS[name]
    mod = symrnn.load(_kink_cell(f"kink_{name}", ours), backend)
    params = {"W_u": np.zeros((1, 1)), "b_u": np.zeros(1), "W_v": np.zeros((1, 1)),
              "b_v": np.zeros(1)}  # u = v = 0: on the kink
    y, _, cache = mod.forward(params, np.ones((1, 1, 1)))
    grads, _, _ = mod.backward(params, cache, np.ones_like(y))
    u, v = (torch.zeros(1, dtype=torch.float64, requires_grad=True) for _ in range(2))
    (theirs(u, v, torch) + v / 2).sum().backward()
    assert grads["b_u"][0] == u.grad.item() and grads["b_v"][0] == v.grad.item()


# -- the four reproductions of bugs found by random cells ------------------------------------

HEADER = 'name = "{name}"\nstates = {states}\nparams = {params}\nequations = [\n'


def _toml(name, states, params, equations):
    body = "".join(f'  "{eq}",\n' for eq in equations)
    return HEADER.format(name=name, states=states, params=params) + body + "]\n"


def _write(tmp_path, text, name):
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_affine_map_that_reads_a_gate(tmp_path, backend):
    """Was: NameError 'g_0_seq' in the NumPy backward, a type-inference failure in numba."""
    text = _toml("reads_gate", '["a"]', "[]", ["g_0 = sigmoid(W_1[a_prev, x] + b_1)",
                                               "a = tanh(W_2[g_0] + b_2)"])
    _fd_ok(_write(tmp_path, text, "reads_gate"), backend)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("H", [1, 4])
def test_the_softsign_cell_verify_rejected(tmp_path, backend, H):
    """Was: verify said 1 of 10 quantities agree; the module is right (and verify now agrees:
    tests/test_verify.py)."""
    text = _toml("bug2", '["a", "c"]', '["p_0"]', [
        "g_0 = (sigmoid(W_1[x] + b_1)) - 3 * c_prev", "a = p_0 * c_prev + a_prev",
        "c = softsign(W_4[x, g_0] + b_4) + a_prev"])
    _fd_ok(_write(tmp_path, text, "bug2"), backend, H=H)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_gate_named_with_one_letter(tmp_path, backend):
    """Was: "name 'z_f' is declared twice (as node and as node)"."""
    text = _toml("one_letter", '["a", "c"]', '["v"]', [
        "f = sigmoid(W_f[a_prev, x] + v * c_prev + b_f)",
        "c = f * c_prev + tanh(W_c[a_prev, x] + b_c)", "a = tanh(c)"])
    _fd_ok(_write(tmp_path, text, "one_letter"), backend)


def test_a_real_name_clash_says_which_two_things_clash():
    text = _toml("clash", '["a"]', "[]", ["z_f = sigmoid(W_q[a_prev, x] + b_q)",
                                          "a = tanh(W_f[a_prev, x] + b_f) * z_f"])
    with pytest.raises(CellError) as info:
        parse_spec(text)
    message = str(info.value)
    assert "'z_f'" in message and "the affine map W_f" in message
    assert "an equation's target" in message and "\n" not in message


def test_the_lstm_ln_derivation_fits_on_two_pages():
    """docs/lstm_ln-derivation.png is this PDF (pdftoppm -r 80); pdfcompresslevel=0 leaves the
    page objects readable."""
    import re
    import shutil

    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex not installed (CI installs it)")
    from symrnn.document import pdf

    pages = re.findall(rb"/Type\s*/Page(?!s)", pdf(symrnn.derive("lstm_ln")))
    assert 1 <= len(pages) <= 2


FUZZED = {  # what tests/test_fuzz.py found, each cut down to its smallest cell
    "reads the state of this step": ('["a", "c"]', ["c = tanh(W_c[x, c_prev])",
                                                    "a = tanh(W_f[c, a_prev] + b_a)"]),
    "softplus' is a sigmoid": ('["a"]', ["a = tanh(W_a[a_prev, x] + b_a + softplus(a_prev))"]),
    "a gate inside a sum": ('["a"]', ["a = tanh(W_a[a_prev, x] + b_a + identity(W_z[x]))"]),
    "a softplus gate": ('["a"]', ["a = tanh(W_a[a_prev, x] + softplus(W_f[x]))"]),
    "max of an exp": ('["a"]', ["a = tanh(W_a[a_prev, x] + b_a + max(exp(-a_prev), 1/2))"]),
    "one product read twice": ('["a"]', ["r = sigmoid(W_r[a_prev, x] + b_r)",
                                         "a = tanh(W_a[r * a_prev, x] + W_c[r * a_prev])"]),
    "abs of an exp": ('["a"]', ["a = tanh(W_a[a_prev, x] + b_a + abs(exp(a_prev)))"]),
    "a mean first": ('["a"]', ["a = tanh(W_a[a_prev, x] + b_a - mean(a_prev))"]),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", sorted(FUZZED))
def test_what_the_fuzzer_found(tmp_path, case, backend):
    """Wrong dW for a state read at its own step; NameError sigmoid, A_seq; Max comparing its
    display arguments; 'a_prev_r' declared twice; unsupported 're'; numba's undefined real."""
    states, equations = FUZZED[case]
    text = _toml("found", states, "[]", equations)
    _fd_ok(_write(tmp_path, text, "found"), backend)


def test_symrnn_mean_and_layer_norm_are_the_builders():
    """symrnn.mean and symrnn.layer_norm in an equation build what cell.mean and
    cell.layer_norm build (and what TOML's mean(...) and layer_norm(...) parse to)."""
    def build(mean, layer_norm):
        cell = CellBuilder("norms", states=("a",))
        z = cell.affine("W_a", [cell.prev("a"), cell.x])
        cell.let("a", symrnn.activations.tanh(layer_norm(z)) + mean(cell.prev("a")))
        return cell.build()

    ours = symrnn.generate_source(build(symrnn.mean, symrnn.layer_norm))
    builder = CellBuilder("unused")
    assert ours == symrnn.generate_source(build(builder.mean, builder.layer_norm))
    toml = _toml("norms", '["a"]', "[]", ["a = tanh(layer_norm(W_a[a_prev, x])) + mean(a_prev)"])
    assert ours == symrnn.generate_source(parse_spec(toml))
