"""The adding problem's data and the readout's gradient."""

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (makes symrnn importable from a checkout)

from symrnn import adding, readout


@pytest.mark.parametrize("seq_len", [2, 3, 7, 50, 201])
def test_two_markers_one_in_each_half_and_the_target_is_their_sum(seq_len):
    rng = np.random.default_rng(seq_len)
    x, target = adding.batch(rng, 500, seq_len)
    assert x.shape == (seq_len, 500, 2) and target.shape == (500,)
    assert x.dtype == target.dtype == np.float32
    values, markers = x[..., 0], x[..., 1]
    assert ((values >= 0) & (values <= 1)).all()
    assert set(np.unique(markers)) <= {0.0, 1.0}
    half = seq_len // 2
    np.testing.assert_array_equal(markers[:half].sum(axis=0), 1)
    np.testing.assert_array_equal(markers[half:].sum(axis=0), 1)
    np.testing.assert_allclose(target, (values * markers).sum(axis=0), rtol=1e-6)


def test_markers_cover_each_half_and_values_vary():
    x, _ = adding.batch(np.random.default_rng(0), 4000, 10)
    where = np.nonzero(x[..., 1])[0]
    assert set(where) == set(range(10))  # every position gets a marker sometimes
    assert x[..., 0].std() > 0.25  # uniform in [0, 1]: std 0.289


def test_baseline_of_predicting_one_is_a_sixth():
    _, target = adding.batch(np.random.default_rng(1), 200_000, 20, dtype=np.float64)
    assert adding.baseline_mse(target) == pytest.approx(1 / 6, abs=0.003)  # Var(u1 + u2) = 2/12
    assert target.mean() == pytest.approx(1.0, abs=0.005)


def test_float64_and_bad_length():
    x, target = adding.batch(np.random.default_rng(0), 3, 4, dtype=np.float64)
    assert x.dtype == target.dtype == np.float64
    with pytest.raises(ValueError, match="seq_len"):
        adding.batch(np.random.default_rng(0), 3, 1)


def test_readout_gradients_match_central_differences():
    rng = np.random.default_rng(3)
    B, H = 5, 4
    read = readout.init(H, rng, np.float64)
    h, target = rng.standard_normal((B, H)), rng.uniform(0, 2, B)
    loss, grads, dh = readout.mse_and_grads(read, h, target)
    assert loss == pytest.approx(np.mean((h @ read["V"] + read["c"] - target) ** 2))

    def f(V=read["V"], c=read["c"], h=h):
        return float(np.mean((h @ V + c - target) ** 2))

    eps = 1e-6
    for name, value, analytic in (("V", read["V"], grads["V"]), ("c", read["c"], grads["c"]),
                                  ("h", h, dh)):
        numeric = np.zeros_like(value)
        for i in np.ndindex(value.shape):
            plus, minus = value.copy(), value.copy()
            plus[i] += eps
            minus[i] -= eps
            numeric[i] = (f(**{name: plus}) - f(**{name: minus})) / (2 * eps)
        assert analytic.shape == value.shape, name
        np.testing.assert_allclose(analytic, numeric, rtol=1e-7, atol=1e-9, err_msg=name)
