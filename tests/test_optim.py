"""Adam against steps worked out by hand, and clipping by the global norm."""

import numpy as np
import pytest
from conftest import ROOT  # noqa: F401  (makes symrnn importable from a checkout)

from symrnn.optim import Adam, clip_by_global_norm, global_norm


def test_two_adam_steps_match_the_hand_computed_ones():
    # lr 0.1, betas (0.9, 0.999), eps 1e-8; p = 1, gradients 0.5 then -1.
    # step 1: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025, m^ = 0.05 / 0.1 = 0.5,
    #         v^ = 0.00025 / 0.001 = 0.25, p = 1 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.900000002
    # step 2: m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975,
    #         m^ = -0.055 / 0.19 = -0.289473684211, v^ = 0.00124975 / 0.001999 = 0.625187593797,
    #         p = 0.900000002 + 0.1 * 0.289473684211 / 0.790688050 = 0.936610354241
    params = {"p": np.array([1.0])}
    adam = Adam(params, lr=0.1, betas=(0.9, 0.999), eps=1e-8)
    adam.step(params, {"p": np.array([0.5])})
    assert params["p"][0] == pytest.approx(0.900000002, abs=1e-12)
    assert adam.m["p"][0] == pytest.approx(0.05) and adam.v["p"][0] == pytest.approx(0.00025)
    adam.step(params, {"p": np.array([-1.0])})
    assert adam.m["p"][0] == pytest.approx(-0.055) and adam.v["p"][0] == pytest.approx(0.00124975)
    assert params["p"][0] == pytest.approx(0.936610354241, abs=1e-11)


def test_first_step_moves_every_entry_by_lr_against_its_gradient_sign():
    # m^ = g and v^ = g^2 after one step, so each entry moves by lr * g / (|g| + eps)
    params = {"W": np.array([[1.0, -2.0], [0.0, 3.0]], dtype=np.float32),
              ("readout", "c"): np.array([0.5], dtype=np.float32)}
    grads = {"W": np.array([[1e-3, -5.0], [2.0, -1e-2]], dtype=np.float32),
             ("readout", "c"): np.array([7.0], dtype=np.float32)}
    Adam(params, lr=0.01).step(params, grads)
    np.testing.assert_allclose(params["W"], [[0.99, -1.99], [-0.01, 3.01]], rtol=0, atol=1e-6)
    np.testing.assert_allclose(params[("readout", "c")], [0.49], atol=1e-6)
    assert params["W"].dtype == np.float32  # float32 stays float32


def test_clipping_scales_every_gradient_by_one_factor():
    grads = {"a": np.array([3.0, 4.0]), "b": np.array([[12.0]])}  # global norm 13
    assert global_norm(grads) == pytest.approx(13.0)
    clipped, norm = clip_by_global_norm(grads, 1.0)
    assert norm == pytest.approx(13.0)
    np.testing.assert_allclose(clipped["a"], [3 / 13, 4 / 13])
    np.testing.assert_allclose(clipped["b"], [[12 / 13]])
    assert global_norm(clipped) == pytest.approx(1.0)
    np.testing.assert_array_equal(grads["a"], [3.0, 4.0])  # the caller's arrays are untouched


@pytest.mark.parametrize("max_norm", [13.0, 100.0, 0, None])
def test_no_clipping_at_or_below_the_limit_or_when_off(max_norm):
    grads = {"a": np.array([3.0, 4.0], dtype=np.float32), "b": np.array([12.0], np.float32)}
    clipped, norm = clip_by_global_norm(grads, max_norm)
    assert norm == pytest.approx(13.0)
    for k in grads:
        np.testing.assert_array_equal(clipped[k], grads[k])
