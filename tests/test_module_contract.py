"""The public contract of a generated module (DESIGN.md, "A generated module")."""

import ast
import copy
import re
import warnings

import conftest
import numpy as np
import pytest
from conftest import (
    BUILTIN_CELLS,
    CUSTOM_CELLS,
    CUSTOM_SHAPES,
    get_cell,
    load_module,
    max_rel_err,
    random_problem,
)

import symrnn

T, B, D, H = 5, 2, 3, 4
BACKENDS = ["numpy"] + (["numba"] if conftest.HAVE_NUMBA else [])


@pytest.fixture(params=BACKENDS, autouse=True)
def backend(request, monkeypatch):
    """Every test here runs on each backend: they share one contract."""
    monkeypatch.setattr(conftest, "BACKEND", request.param)
    return request.param


@pytest.fixture
def lstm(backend):
    return load_module("lstm")
SOME_CELLS = ("rnn", "gru", "lstm", "peephole", "mix")


def _shape(t):
    """A shape as the contract writes it in messages: a Python tuple, e.g. ``(4, 2, 3)``."""
    return str(tuple(t))


# ---------------------------------------------------------------------------------------------
# Constants, shapes, init
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILTIN_CELLS + tuple(CUSTOM_CELLS))
def test_constants_match_the_cell(name):
    cell, mod = get_cell(name), load_module(name)
    assert mod.CELL == name
    assert isinstance(mod.STATES, tuple) and mod.STATES == tuple(cell.states)
    assert isinstance(mod.PARAMS, tuple)
    assert len(set(mod.PARAMS)) == len(mod.PARAMS), mod.PARAMS
    assert sorted(mod.PARAMS) == sorted(cell.params)


@pytest.mark.parametrize("name", BUILTIN_CELLS + tuple(CUSTOM_CELLS))
def test_params_in_declaration_order(name):
    assert load_module(name).PARAMS == tuple(get_cell(name).params)


@pytest.mark.parametrize("name", BUILTIN_CELLS + tuple(CUSTOM_CELLS))
def test_param_shapes_keys_in_params_order(name):
    mod = load_module(name)
    extra = {k: v for k, v in conftest.module_sizes(mod).items() if k not in ("D", "H", 1)}
    shapes = mod.param_shapes(D, H, **extra)
    assert tuple(shapes) == mod.PARAMS
    for k, s in shapes.items():
        assert isinstance(s, tuple) and all(isinstance(n, int) for n in s), (k, s)


@pytest.mark.parametrize("D_, H_", [(3, 5), (7, 2)])
def test_param_shapes_builtin_seed_layout(D_, H_):
    expected = {
        "rnn": {"W_a": (H_, H_ + D_), "b_a": (H_,)},
        "gru": {**{f"W_{k}": (H_, H_ + D_) for k in "urc"}, **{f"b_{k}": (H_,) for k in "urc"}},
        "lstm": {**{f"W_{k}": (H_, H_ + D_) for k in "fuco"}, **{f"b_{k}": (H_,) for k in "fuco"}},
    }
    for name, shapes in expected.items():
        assert load_module(name).param_shapes(D_, H_) == shapes, name


@pytest.mark.parametrize("name", tuple(CUSTOM_CELLS))
def test_param_shapes_custom(name):
    assert load_module(name).param_shapes(3, 5) == CUSTOM_SHAPES[name](3, 5)


@pytest.mark.parametrize("name", SOME_CELLS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_init_params_shapes_and_dtype(name, dtype):
    mod = load_module(name)
    params = mod.init_params(3, 5, rng=0, dtype=dtype)
    shapes = mod.param_shapes(3, 5)
    assert set(params) == set(mod.PARAMS)
    for k, v in params.items():
        assert isinstance(v, np.ndarray), k
        assert v.shape == shapes[k], (k, v.shape, shapes[k])
        assert v.dtype == dtype, (k, v.dtype)
        assert np.all(np.isfinite(v)), k
    weights = [k for k in mod.PARAMS if len(shapes[k]) == 2]
    assert weights and all(np.abs(params[k]).max() > 0 for k in weights)


def test_init_params_default_dtype_is_float64(lstm):
    assert all(v.dtype == np.float64 for v in lstm.init_params(3, 4, rng=0).values())


def test_init_params_reproducible(lstm):
    p1, p2 = lstm.init_params(3, 4, rng=123), lstm.init_params(3, 4, rng=123)
    for k in lstm.PARAMS:
        np.testing.assert_array_equal(p1[k], p2[k], err_msg=k)
    p3 = lstm.init_params(3, 4, rng=124)
    assert any(not np.array_equal(p1[k], p3[k]) for k in lstm.PARAMS)
    # a Generator is accepted as well
    g1 = lstm.init_params(3, 4, rng=np.random.default_rng(5))
    g2 = lstm.init_params(3, 4, rng=np.random.default_rng(5))
    for k in lstm.PARAMS:
        np.testing.assert_array_equal(g1[k], g2[k], err_msg=k)
    lstm.init_params(3, 4)  # rng=None works


# ---------------------------------------------------------------------------------------------
# forward / backward / step
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SOME_CELLS)
@pytest.mark.parametrize("T_, B_", [(5, 2), (1, 1)])
def test_forward_backward_shapes(name, T_, B_):
    mod = load_module(name)
    params, x, state0, _, _ = random_problem(mod, T=T_, B=B_)
    y, state_T, cache = mod.forward(params, x, state0)
    assert y.shape == (T_, B_, H)
    assert set(state_T) == set(mod.STATES)
    for s in mod.STATES:
        assert state_T[s].shape == (B_, H), s
    # y is the output state at every step; the last one is state_T[STATES[0]]
    np.testing.assert_allclose(y[-1], state_T[mod.STATES[0]], rtol=0, atol=0)
    grads, dx, dstate0 = mod.backward(params, cache, np.ones_like(y))
    assert set(grads) == set(params)
    assert all(grads[k].shape == params[k].shape for k in params)
    assert dx.shape == x.shape
    assert set(dstate0) == set(mod.STATES)
    assert all(dstate0[s].shape == (B_, H) for s in mod.STATES)


@pytest.mark.parametrize("name", SOME_CELLS)
def test_state0_none_means_zeros(name):
    mod = load_module(name)
    params, x, _, G, Gs = random_problem(mod, seed=2)
    zeros = {s: np.zeros((B, H)) for s in mod.STATES}
    y0, sT0, c0 = mod.forward(params, x)
    y1, sT1, c1 = mod.forward(params, x, zeros)
    np.testing.assert_allclose(y0, y1, rtol=1e-14, atol=1e-15)
    for s in mod.STATES:
        np.testing.assert_allclose(sT0[s], sT1[s], rtol=1e-14, atol=1e-15)
    g0, dx0, ds0 = mod.backward(params, c0, G, Gs)
    g1, dx1, ds1 = mod.backward(params, c1, G, Gs)
    for k in params:
        np.testing.assert_allclose(g0[k], g1[k], rtol=1e-13, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(dx0, dx1, rtol=1e-13, atol=1e-14)
    for s in mod.STATES:
        assert ds0[s].shape == (B, H)
        np.testing.assert_allclose(ds0[s], ds1[s], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("name", SOME_CELLS)
def test_step_repeated_equals_forward(name):
    mod = load_module(name)
    params, x, state0, _, _ = random_problem(mod, seed=4)
    y, state_T, _ = mod.forward(params, x, state0)
    state = state0
    for t in range(T):
        state = mod.step(params, x[t], state)
        assert set(state) == set(mod.STATES)
        np.testing.assert_allclose(state[mod.STATES[0]], y[t], rtol=1e-12, atol=1e-13,
                                   err_msg=f"step {t}")
    for s in mod.STATES:
        np.testing.assert_allclose(state[s], state_T[s], rtol=1e-12, atol=1e-13, err_msg=s)


@pytest.mark.parametrize("name", SOME_CELLS)
def test_float32_stays_float32_and_agrees_with_float64(name):
    mod = load_module(name)
    p64, x64, s64, G64, Gs64 = random_problem(mod, seed=6)
    f32 = np.float32
    p32 = {k: v.astype(f32) for k, v in p64.items()}
    x32, s32 = x64.astype(f32), {k: v.astype(f32) for k, v in s64.items()}
    G32, Gs32 = G64.astype(f32), {k: v.astype(f32) for k, v in Gs64.items()}
    # compare against float64 run on exactly the same (float32-representable) numbers
    p64 = {k: v.astype(np.float64) for k, v in p32.items()}
    x64, s64 = x32.astype(np.float64), {k: v.astype(np.float64) for k, v in s32.items()}
    G64, Gs64 = G32.astype(np.float64), {k: v.astype(np.float64) for k, v in Gs32.items()}

    y32, sT32, c32 = mod.forward(p32, x32, s32)
    y64, sT64, c64 = mod.forward(p64, x64, s64)
    g32, dx32, ds32 = mod.backward(p32, c32, G32, Gs32)
    g64, dx64, ds64 = mod.backward(p64, c64, G64, Gs64)
    step32 = mod.step(p32, x32[0], s32)

    out32 = {"y": y32, "dx": dx32}
    out32 |= {f"state_T[{s!r}]": sT32[s] for s in mod.STATES}
    out32 |= {f"grads[{k!r}]": g32[k] for k in mod.PARAMS}
    out32 |= {f"dstate0[{s!r}]": ds32[s] for s in mod.STATES}
    out32 |= {f"step[{s!r}]": step32[s] for s in mod.STATES}
    out64 = {"y": y64, "dx": dx64}
    out64 |= {f"state_T[{s!r}]": sT64[s] for s in mod.STATES}
    out64 |= {f"grads[{k!r}]": g64[k] for k in mod.PARAMS}
    out64 |= {f"dstate0[{s!r}]": ds64[s] for s in mod.STATES}
    out64 |= {f"step[{s!r}]": mod.step(p64, x64[0], s64)[s] for s in mod.STATES}

    wrong = {k: v.dtype for k, v in out32.items() if v.dtype != np.float32}
    assert not wrong, f"float32 inputs gave non-float32 outputs: {wrong}"
    assert all(v.dtype == np.float64 for v in out64.values())
    errs = {k: max_rel_err(out32[k], out64[k]) for k in out32}
    bad = {k: e for k, e in errs.items() if not e < 1e-5}
    assert not bad, f"float32 vs float64 relative error >= 1e-5: {bad}"


def test_init_params_float32_forward_stays_float32(lstm):
    params = lstm.init_params(D, H, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((T, B, D)).astype(np.float32)
    y, state_T, cache = lstm.forward(params, x)
    assert y.dtype == np.float32 and all(v.dtype == np.float32 for v in state_T.values())
    grads, dx, dstate0 = lstm.backward(params, cache, np.ones_like(y))
    assert dx.dtype == np.float32
    assert all(v.dtype == np.float32 for v in grads.values())
    assert all(v.dtype == np.float32 for v in dstate0.values())


def _readonly(a):
    a = a.copy()
    a.setflags(write=False)
    return a


@pytest.mark.parametrize("name", SOME_CELLS)
def test_inputs_not_modified(name):
    mod = load_module(name)
    params, x, state0, G, Gs = random_problem(mod, seed=8)
    saved = copy.deepcopy((params, x, state0, G, Gs))
    y, state_T, cache = mod.forward(params, x, state0)
    r1 = mod.backward(params, cache, G, Gs)
    r2 = mod.backward(params, cache, G, Gs)  # the cache is not consumed by backward
    mod.step(params, x[0], state0)
    for (a, b), label in zip(zip((params, x, state0, G, Gs), saved, strict=True),
                             ("params", "x", "state0", "dy", "dstate_T"), strict=True):
        if isinstance(a, dict):
            assert set(a) == set(b), label
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=f"{label}[{k!r}] modified")
        else:
            np.testing.assert_array_equal(a, b, err_msg=f"{label} modified")
    for k in params:
        np.testing.assert_array_equal(r1[0][k], r2[0][k], err_msg=k)
    np.testing.assert_array_equal(r1[1], r2[1])
    # the outputs do not alias the caller's arrays
    for s in mod.STATES:
        assert not np.shares_memory(state_T[s], state0[s])
    for k in params:
        assert not np.shares_memory(r1[0][k], params[k]), k


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_read_only_inputs_accepted(name):
    """Read-only arrays work: nothing the caller owns is written to."""
    mod = load_module(name)
    params, x, state0, G, Gs = random_problem(mod, seed=9)
    params = {k: _readonly(v) for k, v in params.items()}
    x, G = _readonly(x), _readonly(G)
    state0 = {k: _readonly(v) for k, v in state0.items()}
    Gs = {k: _readonly(v) for k, v in Gs.items()}
    y, state_T, cache = mod.forward(params, x, state0)
    mod.backward(params, cache, G, Gs)
    mod.step(params, x[0], state0)


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------


def _problem(mod):
    params, x, state0, G, Gs = random_problem(mod, seed=10)
    return params, x, state0, G, Gs


def test_x_rank_2_rejected(lstm):
    params, x, state0, _, _ = _problem(lstm)
    bad = x[0]  # (B, D)
    with pytest.raises(ValueError) as e:
        lstm.forward(params, bad, state0)
    msg = str(e.value)
    assert re.search(r"\bx\b", msg), msg
    assert _shape(bad.shape) in msg, msg
    # expected shape: a rank-3 tuple ending in D, e.g. (T, B, 3)
    assert re.search(r"\([^()]*,[^()]*,\s*%d\)" % D, msg), msg


def test_x_wrong_input_size_rejected(lstm):
    params, _, state0, _, _ = _problem(lstm)
    bad = np.zeros((T, B, D + 1))
    with pytest.raises(ValueError) as e:
        lstm.forward(params, bad, state0)
    msg = str(e.value)
    assert re.search(r"\bx\b", msg), msg
    assert _shape((T, B, D)) in msg and _shape((T, B, D + 1)) in msg, msg


@pytest.mark.parametrize("key, bad_shape, good_shape", [
    ("W_o", (H, H + D + 1), (H, H + D)),
    ("W_u", (H + 1, H + D), (H, H + D)),
    ("b_o", (H + 1,), (H,)),
    ("b_c", (1, H), (H,)),
])
def test_wrong_param_shape_rejected(lstm, key, bad_shape, good_shape):
    params, x, state0, _, _ = _problem(lstm)
    params[key] = np.zeros(bad_shape)
    with pytest.raises(ValueError) as e:
        lstm.forward(params, x, state0)
    msg = str(e.value)
    assert key in msg, msg
    assert _shape(good_shape) in msg and _shape(bad_shape) in msg, msg


def test_missing_param_rejected(lstm):
    params, x, state0, _, _ = _problem(lstm)
    del params["b_u"]
    with pytest.raises(ValueError, match="b_u"):
        lstm.forward(params, x, state0)


def test_extra_param_rejected(lstm):
    params, x, state0, _, _ = _problem(lstm)
    params["W_extra"] = np.zeros((H, H + D))
    with pytest.raises(ValueError, match="W_extra"):
        lstm.forward(params, x, state0)


def test_missing_param_rejected_in_backward_and_step(lstm):
    params, x, state0, G, _ = _problem(lstm)
    _, _, cache = lstm.forward(params, x, state0)
    del params["W_c"]
    with pytest.raises(ValueError, match="W_c"):
        lstm.backward(params, cache, G)
    with pytest.raises(ValueError, match="W_c"):
        lstm.step(params, x[0], state0)


def test_mixed_dtypes_rejected(lstm):
    params, x, state0, G, _ = _problem(lstm)
    p32 = {k: v.astype(np.float32) for k, v in params.items()}
    s32 = {k: v.astype(np.float32) for k, v in state0.items()}
    with pytest.raises(ValueError):  # float32 params, float64 x
        lstm.forward(p32, x, s32)
    with pytest.raises(ValueError):  # float64 params, float32 x
        lstm.forward(params, x.astype(np.float32), state0)
    with pytest.raises(ValueError):  # one float32 parameter among float64 ones
        lstm.forward({**params, "W_f": params["W_f"].astype(np.float32)}, x, state0)
    with pytest.raises(ValueError):  # float32 state0 with float64 params and x
        lstm.forward(params, x, s32)


def test_mixed_dtype_dy_rejected(lstm):
    params, x, state0, G, _ = _problem(lstm)
    _, _, cache = lstm.forward(params, x, state0)
    with pytest.raises(ValueError):
        lstm.backward(params, cache, G.astype(np.float32))


def test_state0_wrong_shape_rejected(lstm):
    params, x, state0, _, _ = _problem(lstm)
    state0["c"] = np.zeros((B, H + 1))
    with pytest.raises(ValueError) as e:
        lstm.forward(params, x, state0)
    msg = str(e.value)
    assert re.search(r"state0\[\s*['\"]c['\"]\s*\]", msg), msg
    assert _shape((B, H)) in msg and _shape((B, H + 1)) in msg, msg


def test_dy_wrong_shape_rejected(lstm):
    params, x, state0, G, _ = _problem(lstm)
    _, _, cache = lstm.forward(params, x, state0)
    bad = np.zeros((T, B, H + 1))
    with pytest.raises(ValueError) as e:
        lstm.backward(params, cache, bad)
    msg = str(e.value)
    assert re.search(r"\bdy\b", msg), msg
    assert _shape((T, B, H)) in msg and _shape((T, B, H + 1)) in msg, msg


def test_dstate_T_wrong_shape_rejected(lstm):
    params, x, state0, G, Gs = _problem(lstm)
    _, _, cache = lstm.forward(params, x, state0)
    Gs["a"] = np.zeros((B + 1, H))
    with pytest.raises(ValueError) as e:
        lstm.backward(params, cache, G, Gs)
    msg = str(e.value)
    assert "dstate_T" in msg, msg
    assert _shape((B, H)) in msg and _shape((B + 1, H)) in msg, msg


def test_step_x_t_wrong_shape_rejected(lstm):
    params, x, state0, _, _ = _problem(lstm)
    bad = np.zeros((B, D + 1))
    with pytest.raises(ValueError) as e:
        lstm.step(params, bad, state0)
    msg = str(e.value)
    assert "x_t" in msg, msg
    assert _shape((B, D)) in msg and _shape((B, D + 1)) in msg, msg


# ---------------------------------------------------------------------------------------------
# Numerics: sigmoid/tanh never overflow or warn in float32
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm", "peephole"])
def test_huge_preactivations_float32_no_warnings(name):
    mod = load_module(name)
    rng = np.random.default_rng(11)
    params = mod.init_params(D, H, rng=0, dtype=np.float32)
    x = (1e4 * np.sign(rng.standard_normal((T, B, D)))).astype(np.float32)
    x[:, 0] = -1e4  # a whole batch row of huge negative inputs
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y, state_T, cache = mod.forward(params, x)
        grads, dx, dstate0 = mod.backward(params, cache, np.ones_like(y))
    assert y.dtype == np.float32
    assert np.all(np.isfinite(y)) and all(np.all(np.isfinite(v)) for v in state_T.values())
    assert np.all(np.isfinite(dx)) and all(np.all(np.isfinite(v)) for v in grads.values())
    assert all(np.all(np.isfinite(v)) for v in dstate0.values())


@pytest.mark.parametrize("sign", [-1.0, 1.0])
def test_lstm_saturated_gates_float32_exact(lstm, sign):
    """W = 0, every bias = sign * 1e4: the gates are exactly 0 or 1 and c_tilde = sign.

    sign = -1: Gamma = 0, so c = 0 and a = 0 at every step.
    sign = +1: Gamma = 1, so c_t = c_{t-1} + 1 and a_t = tanh(c_t).
    """
    shapes = lstm.param_shapes(D, H)
    params = {k: (np.zeros(s) if len(s) == 2 else np.full(s, sign * 1e4)).astype(np.float32)
              for k, s in shapes.items()}
    x = np.full((T, B, D), -1e4, dtype=np.float32)
    c0 = np.random.default_rng(12).standard_normal((B, H)).astype(np.float32)
    state0 = {"a": np.zeros((B, H), np.float32), "c": c0}
    with warnings.catch_warnings(), np.errstate(all="raise"):
        warnings.simplefilter("error")
        y, state_T, cache = lstm.forward(params, x, state0)
        lstm.backward(params, cache, np.ones_like(y))
    if sign < 0:
        expected_c = np.zeros((T, B, H))
    else:
        expected_c = c0[None] + np.arange(1, T + 1)[:, None, None]
    np.testing.assert_allclose(y, np.tanh(expected_c), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(state_T["c"], expected_c[-1], rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# The generated source
# ---------------------------------------------------------------------------------------------


def _imported_modules(tree):
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0] if node.level == 0 else ".")
    return names


@pytest.mark.parametrize("name", BUILTIN_CELLS + ("peephole",))
def test_source_imports_only_numpy(name):
    source = symrnn.generate_source(get_cell(name))
    tree = ast.parse(source)
    imported = _imported_modules(tree) - {"__future__"}
    assert imported == {"numpy"}, imported
    assert "__import__" not in source and "importlib" not in source


@pytest.mark.parametrize("name, words", [
    # the docstring is in the seed's notation, printed as Unicode text
    ("lstm", ["Γ_f⟨t⟩", "Γ_u⟨t⟩", "Γ_o⟨t⟩", "c̃⟨t⟩", "a⟨t−1⟩", "W_f", "b_f", "⊙"]),
    ("gru", ["Γ_u⟨t⟩", "Γ_r⟨t⟩", "c̃⟨t⟩", "W_c"]),
    ("rnn", ["W_a", "b_a", "tanh"]),
    ("peephole", ["p_f", "p_o", "Γ_f⟨t⟩"]),
])
def test_source_header_and_docstring(name, words):
    source = symrnn.generate_source(get_cell(name))
    assert source.splitlines()[0].startswith("# Generated by symrnn"), source.splitlines()[0]
    doc = ast.get_docstring(ast.parse(source))
    assert doc, "generated module has no docstring"
    missing = [w for w in words if w not in doc]
    assert not missing, f"docstring does not mention {missing}:\n{doc}"
    # it lists the backward equations too (adjoints such as dGamma_f, dW_f, da_prev, ...)
    adjoint = r"\bd(Gamma_\w+|W_\w+|b_\w+|z_\w+|a_prev|c_prev|c_tilde|a|c|x)\b|\\partial|∂"
    assert re.search(adjoint, doc), doc


def test_generate_source_deterministic_and_accepts_names():
    s1 = symrnn.generate_source("lstm")
    s2 = symrnn.generate_source(symrnn.get_cell("lstm"))
    assert s1 == s2
    assert symrnn.generate_source("lstm") == s1
    assert symrnn.generate_source("gru") != s1


def test_load_fresh_module_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    m1, m2 = symrnn.load("rnn"), symrnn.load(symrnn.get_cell("rnn"))
    assert m1 is not m2
    m1.marker = 1
    assert not hasattr(m2, "marker")
    assert m1.CELL == m2.CELL == "rnn"
    assert list(tmp_path.iterdir()) == []


def test_derive_runs_on_every_cell():
    for name in BUILTIN_CELLS + tuple(CUSTOM_CELLS):
        assert symrnn.derive(get_cell(name)) is not None


@pytest.mark.parametrize("name", ["lstm", "gru_torch", "peephole"])
def test_workspace_reuses_arrays_and_refuses_a_stale_cache(name):
    mod = load_module(name)
    params, x, state0, G, Gs = random_problem(mod, seed=6)
    y, state_T, cache = mod.forward(params, x, state0)
    expected = mod.backward(params, cache, G, Gs)
    workspace = {}
    y1, _, cache1 = mod.forward(params, x, state0, workspace=workspace)
    arrays = {k: v for k, v in workspace.items() if isinstance(v, np.ndarray)}
    assert arrays and np.array_equal(y1, y)
    grads, dx, dstate0 = mod.backward(params, cache1, G, Gs, workspace=workspace)
    for k in grads:
        np.testing.assert_array_equal(grads[k], expected[0][k])
    np.testing.assert_array_equal(dx, expected[1])
    # a second forward with the workspace reuses its arrays, so the first cache is stale
    _, _, cache2 = mod.forward(params, x[::-1].copy(), state0, workspace=workspace)
    assert all(workspace[k] is v for k, v in arrays.items())
    with pytest.raises(ValueError, match="cache: a later forward"):
        mod.backward(params, cache1, G, Gs)
    mod.backward(params, cache2, G, Gs)  # the newest cache is fine
    # another shape gets new arrays, and nothing breaks
    mod.forward(params, x[:2], state0, workspace=workspace)
