"""Variable-length batches and the reverse direction in every generated module, both backends.

Semantics as PyTorch's packed sequences: sequence b runs for its first L_b steps; after them its
state stays, y is 0, dy is not read and dx is 0; state_T[b] is the state after L_b steps. The
reference is independent of the code that runs the lengths: each sequence alone, unpadded, through
the module's full-length forward and backward (checked against finite differences elsewhere), and
for the gradients, central differences of the padded run itself.
"""

import numpy as np
import pytest
from conftest import (
    BUILTIN_CELLS,
    FD_TOL,
    HAVE_NUMBA,
    D,
    H,
    gradient_errors,
    load_module,
    module_sizes,
    random_problem,
)

BACKENDS = ("numpy", "numba") if HAVE_NUMBA else ("numpy",)
T_, B_ = 5, 4
LENGTHS = np.array([5, 0, 3, 1])  # L_b = T, L_b = 0, and two in between, unsorted


def _problem(mod, seed=0):
    inputs = {}
    params, x, state0, G, Gs = random_problem(mod, seed=seed, T=T_, B=B_, inputs=inputs)
    return params, x, state0, G, Gs, inputs


def _alone(mod, params, x, state0, inputs, b, L, reverse):
    """Sequence b alone: its first L steps, unpadded (in reverse order for reverse)."""
    order = slice(L - 1, None, -1) if reverse else slice(0, L)
    if L == 0:
        order = slice(0, 0)
    seq = {k: v[order, b:b + 1] for k, v in inputs.items()}
    y, state_T, cache = mod.forward(params, x[order, b:b + 1].copy(),
                                    {s: v[b:b + 1] for s, v in state0.items()},
                                    **{k: v.copy() for k, v in seq.items()})
    return order, y, state_T, cache


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize("name", BUILTIN_CELLS)
def test_each_sequence_as_if_alone(name, reverse, backend):
    """Outputs, final states and every gradient of a padded batch equal those of each sequence
    run alone at its own length; y is 0 and dx is 0 at the padded steps."""
    mod = load_module(name, backend)
    params, x, state0, G, Gs, inputs = _problem(mod)
    y, state_T, cache = mod.forward(params, x, state0, lengths=LENGTHS, reverse=reverse,
                                    **inputs)
    grads, dx, dstate0, *dinputs = mod.backward(params, cache, G, Gs)
    total = {k: np.zeros_like(v) for k, v in params.items()}
    for b, L in enumerate(LENGTHS):
        order, y_b, state_b, cache_b = _alone(mod, params, x, state0, inputs, b, L, reverse)
        np.testing.assert_allclose(y[order, b], y_b[:, 0], rtol=1e-12, atol=1e-12)
        assert not y[L:, b].any(), "y must be 0 at the padded steps"
        for s in mod.STATES:
            np.testing.assert_allclose(state_T[s][b], state_b[s][0], rtol=1e-12, atol=1e-12)
        if L == 0:
            for s in mod.STATES:  # nothing ran: the state's gradient passes through
                np.testing.assert_array_equal(dstate0[s][b], Gs[s][b])
            assert not dx[:, b].any()
            continue
        out = mod.backward(params, cache_b, G[order, b:b + 1].copy(),
                           {s: v[b:b + 1] for s, v in Gs.items()})
        for k in params:
            total[k] += out[0][k]
        np.testing.assert_allclose(dx[order, b], out[1][:, 0], rtol=1e-10, atol=1e-12)
        assert not dx[L:, b].any(), "dx must be 0 at the padded steps"
        for s in mod.STATES:
            np.testing.assert_allclose(dstate0[s][b], out[2][s][0], rtol=1e-10, atol=1e-12)
        for k in inputs:
            np.testing.assert_allclose(dinputs[0][k][order, b], out[3][k][:, 0], rtol=1e-10,
                                       atol=1e-12)
    for k in params:
        np.testing.assert_allclose(grads[k], total[k], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("run", [{"lengths": LENGTHS}, {"lengths": LENGTHS, "reverse": True},
                                 {"reverse": True}], ids=["lengths", "reverse-lengths", "reverse"])
@pytest.mark.parametrize("name", BUILTIN_CELLS + ("peephole", "deep"))
def test_gradients_match_finite_differences(name, run, backend):
    """backward after forward with lengths and reverse against central differences (float64;
    a step of 1e-6: at 1e-5 the truncation error of slstm's exponentials, reversed, is 1e-5)."""
    mod = load_module(name, backend)
    errors = gradient_errors(mod, run=run, eps=1e-6, T=T_, B=B_)
    bad = {k: e for k, (e, scale) in errors.items() if e > FD_TOL and scale > 1e-8}
    assert not bad, bad


@pytest.mark.parametrize("backend", BACKENDS)
def test_padded_dy_is_not_read(backend):
    mod = load_module("lstm", backend)
    params, x, state0, G, Gs, _ = _problem(mod)
    y, _, cache = mod.forward(params, x, state0, lengths=LENGTHS)
    noisy = G.copy()
    clean = G.copy()
    for b, L in enumerate(LENGTHS):
        noisy[L:, b] = 1e3
        clean[L:, b] = 0
    a = mod.backward(params, cache, noisy, Gs)
    b = mod.backward(params, cache, clean, Gs)
    for k in params:
        np.testing.assert_array_equal(a[0][k], b[0][k])
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lstm", "gru_d"])
def test_full_lengths_equal_no_lengths(name, backend):
    """lengths all T takes the runs' path and gives what lengths=None gives; reverse=True with no
    lengths is the time-flipped run."""
    mod = load_module(name, backend)
    params, x, state0, G, Gs, inputs = _problem(mod)
    y0, s0, c0 = mod.forward(params, x, state0, **inputs)
    y1, s1, c1 = mod.forward(params, x, state0, lengths=np.full(B_, T_), **inputs)
    np.testing.assert_allclose(y1, y0, rtol=1e-13, atol=1e-14)
    g0 = mod.backward(params, c0, G, Gs)
    g1 = mod.backward(params, c1, G, Gs)
    for k in params:
        np.testing.assert_allclose(g1[0][k], g0[0][k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(g1[1], g0[1], rtol=1e-12, atol=1e-14)
    flipped = {k: v[::-1].copy() for k, v in inputs.items()}
    y2, s2, _ = mod.forward(params, x, state0, reverse=True, **inputs)
    y3, s3, _ = mod.forward(params, x[::-1].copy(), state0, **flipped)
    np.testing.assert_allclose(y2, y3[::-1], rtol=1e-13, atol=1e-14)
    for s in mod.STATES:
        np.testing.assert_allclose(s2[s], s3[s], rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", BUILTIN_CELLS)
@pytest.mark.parametrize("T, B", [(5, 0), (0, 3), (0, 0)])
def test_empty_batch_or_sequence(name, T, B, backend):
    """B = 0 (it divided by zero) and T = 0: empty outputs, state_T = state0, zero gradients."""
    mod = load_module(name, backend)
    sizes = module_sizes(mod)
    extra = {k: v for k, v in sizes.items() if k not in ("D", "H", 1)}
    params = mod.init_params(D, H, rng=0, **extra)
    width = {s: sizes[mod.SIZES[s]] for s in mod.STATES}
    inputs = {v: np.zeros((T, B, sizes[mod.SIZES[v]])) for v in mod.INPUTS[1:]}
    state0 = {s: np.ones((B, width[s])) for s in mod.STATES}
    for lengths in (None, np.zeros(B, dtype=int)):
        y, state_T, cache = mod.forward(params, np.zeros((T, B, D)), state0, lengths=lengths,
                                        **inputs)
        assert y.shape == (T, B, width[mod.STATES[0]])
        for s in mod.STATES:
            np.testing.assert_array_equal(state_T[s], state0[s])
        grads, dx, dstate0, *_ = mod.backward(params, cache, np.zeros_like(y))
        assert dx.shape == (T, B, D)
        assert all(not g.any() for g in grads.values())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lengths, message", [
    (np.array([5, 0, 3]), "lengths: expected shape (4,), one length per sequence, got (3,)"),
    (np.array([5.0, 0, 3, 1]), "lengths: expected integers, got dtype float64"),
    (np.array([6, 0, 3, 1]), "lengths: expected 0 <= L_b <= T = 5, got values from 0 to 6"),
    (np.array([5, -1, 3, 1]), "lengths: expected 0 <= L_b <= T = 5, got values from -1 to 5"),
    (np.array([[5, 0, 3, 1]]), "lengths: expected shape (4,), one length per sequence, "
                               "got (1, 4)"),
])
def test_bad_lengths_one_line(lengths, message, backend):
    mod = load_module("lstm", backend)
    params, x, state0, *_ = _problem(mod)
    with pytest.raises(ValueError) as e:
        mod.forward(params, x, state0, lengths=lengths)
    assert str(e.value) == message


def test_lengths_accept_a_list_and_any_integer_dtype():
    mod = load_module("gru")
    params, x, state0, *_ = _problem(mod)
    ref = mod.forward(params, x, state0, lengths=LENGTHS)[0]
    for lengths in (LENGTHS.tolist(), LENGTHS.astype(np.int32), LENGTHS.astype(np.uint8)):
        np.testing.assert_array_equal(mod.forward(params, x, state0, lengths=lengths)[0], ref)


def test_padded_steps_cost_no_work():
    """Each run of the time loop sees only the sequences still running: the cache holds the
    runs' own inputs, whose sizes add up to sum(L_b) rows."""
    mod = load_module("lstm")
    params, x, state0, *_ = _problem(mod)
    _, _, cache = mod.forward(params, x, state0, lengths=LENGTHS)
    rows = [run[3]["x"].shape[0] * run[3]["x"].shape[1] for run in cache["runs"]]
    assert sum(rows) == LENGTHS.sum()


@pytest.mark.parametrize("backend", BACKENDS)
def test_strided_x_gives_the_same_gradients(backend):
    """x a strided view (every other sequence of a larger batch): the numba module wrote dx into
    a copy when x was not C-contiguous."""
    mod = load_module("gru", backend)
    params, x, state0, G, Gs, _ = _problem(mod)
    wide = np.repeat(x, 2, axis=1)
    strided = wide[:, ::2]
    assert not strided.flags.c_contiguous
    a = mod.backward(params, mod.forward(params, strided, state0)[2], G, Gs)
    b = mod.backward(params, mod.forward(params, x, state0)[2], G, Gs)
    np.testing.assert_array_equal(a[1], b[1])
