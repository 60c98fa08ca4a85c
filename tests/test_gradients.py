"""backward() against central finite differences in float64, for the built-in cells and for user
cells written with the DSL (the engine must not be special-cased to rnn/gru/lstm)."""

import numpy as np
import pytest
from conftest import (
    BUILTIN_CELLS,
    CUSTOM_CELLS,
    FD_TOL,
    get_cell,
    gradient_errors,
    load_module,
    max_rel_err,
    random_problem,
)

import symrnn

ALL_CELLS = BUILTIN_CELLS + tuple(CUSTOM_CELLS)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_backward_matches_finite_differences(name):
    mod = load_module(name)
    errors = gradient_errors(mod, seed=1)
    # every parameter, x and each initial state is checked
    expected = {f"params[{k!r}]" for k in mod.PARAMS} | {"x"} | set(getattr(mod, "INPUTS", ())[1:])
    expected |= {f"state0[{s!r}]" for s in mod.STATES}
    assert set(errors) == expected
    # the check is not vacuous: every gradient is clearly non-zero on this random problem
    vanishing = {k: g for k, (_, g) in errors.items() if g < 1e-3}
    assert not vanishing, f"degenerate test problem, gradients ~0: {vanishing}"
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert not bad, f"{name}: max relative error vs finite differences >= {FD_TOL}: {bad}"


@pytest.mark.parametrize("name", ["lstm", "peephole"])
def test_backward_matches_finite_differences_second_seed(name):
    mod = load_module(name)
    errors = gradient_errors(mod, seed=7)
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert not bad, f"{name}: max relative error vs finite differences >= {FD_TOL}: {bad}"


def test_custom_cell_params_follow_declaration():
    """The custom cells expose exactly the parameters they declare (incl. elementwise vectors)."""
    mod = load_module("peephole")
    assert {"p_f", "p_u", "p_o"} <= set(mod.PARAMS)
    assert mod.param_shapes(3, 4)["p_f"] == (4,)
    assert mod.STATES == ("a", "c")


def _assert_same(r1, r2, mod):
    (g1, dx1, ds1), (g2, dx2, ds2) = r1, r2
    assert set(g1) == set(g2)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-13, atol=1e-14, err_msg=k)
    np.testing.assert_allclose(dx1, dx2, rtol=1e-13, atol=1e-14, err_msg="dx")
    for s in mod.STATES:
        np.testing.assert_allclose(ds1[s], ds2[s], rtol=1e-13, atol=1e-14, err_msg=s)


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm", "mix"])
def test_backward_none_means_zeros(name):
    mod = load_module(name)
    params, x, state0, G, Gs = random_problem(mod, seed=3)
    _, _, cache = mod.forward(params, x, state0)
    zeros_dy = np.zeros_like(G)
    zeros_ds = {s: np.zeros_like(v) for s, v in Gs.items()}
    # dy=None, dstate_T=None == both zeros
    _assert_same(mod.backward(params, cache, None, None),
                 mod.backward(params, cache, zeros_dy, zeros_ds), mod)
    # dy=None with a real dstate_T == zeros dy with it (and the result is not trivially zero)
    r_none = mod.backward(params, cache, None, Gs)
    _assert_same(r_none, mod.backward(params, cache, zeros_dy, Gs), mod)
    assert np.abs(r_none[1]).max() > 0
    # dstate_T omitted (default None) == zeros dstate_T
    r_default = mod.backward(params, cache, G)
    _assert_same(r_default, mod.backward(params, cache, G, zeros_ds), mod)
    assert np.abs(r_default[1]).max() > 0


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_gradient_is_linear_in_the_upstream_gradients(name):
    """backward(dy1 + dy2) == backward(dy1) + backward(dy2): no hidden dependence on dy's scale."""
    mod = load_module(name)
    params, x, state0, G, Gs = random_problem(mod, seed=5)
    _, _, cache = mod.forward(params, x, state0)
    g1, dx1, ds1 = mod.backward(params, cache, G, None)
    g2, dx2, ds2 = mod.backward(params, cache, None, Gs)
    g, dx, ds = mod.backward(params, cache, G, Gs)
    for k in g:
        assert max_rel_err(g[k], g1[k] + g2[k]) < 1e-12, k
    assert max_rel_err(dx, dx1 + dx2) < 1e-12
    for s in mod.STATES:
        assert max_rel_err(ds[s], ds1[s] + ds2[s]) < 1e-12, s


@pytest.mark.parametrize("name", ["lstm", "gru_torch", "peephole", "mix"])
def test_chunks_of_steps_change_nothing(name):
    """Forward and backward work K steps at a time (K from _ROWS); chunks of 1 and 2 steps give
    the same results as one chunk, and still match finite differences."""
    whole = load_module(name)
    chunked = symrnn.load(get_cell(name))
    params, x, state0, G, Gs = random_problem(whole, seed=4)
    y, state_T, cache = whole.forward(params, x, state0)
    expected = whole.backward(params, cache, G, Gs)
    for rows in (1, 2 * x.shape[1]):  # chunks of one step, then of two steps
        chunked._ROWS = rows
        y_c, state_c, cache_c = chunked.forward(params, x, state0)
        np.testing.assert_allclose(y_c, y, rtol=1e-13, atol=1e-14)
        _assert_same(chunked.backward(params, cache_c, G, Gs), expected, whole)
    errors = gradient_errors(chunked, seed=5)
    assert all(e < FD_TOL for e, _ in errors.values()), errors
