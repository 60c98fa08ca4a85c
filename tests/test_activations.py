"""Every registered activation: its NumPy form, its derivative convention at kinks, and the
independent symbolic check of a cell that uses all of them."""

import numpy as np
import pytest
import sympy as sp
from conftest import build_kinked

import symrnn
from symrnn.activations import REGISTRY
from symrnn.cell import CellBuilder
from symrnn.verify import verify

# closed forms written here, independently of the registry
REFERENCE = {
    "sigmoid": lambda z: 1 / (1 + np.exp(-z)),
    "tanh": np.tanh,
    "relu": lambda z: np.maximum(z, 0),
    "softsign": lambda z: z / (1 + np.abs(z)),
    "hard_sigmoid": lambda z: np.clip(z / 6 + 0.5, 0, 1),
    "identity": lambda z: z,
    "softplus": lambda z: np.logaddexp(0, z),
    "silu": lambda z: z / (1 + np.exp(-z)),
    "elu": lambda z: np.where(z > 0, z, np.exp(np.minimum(z, 0)) - 1),
}


def _single(name):
    """a = act(W_a x + b_a): the activation alone, applied to the input's affine map."""
    cell = CellBuilder(f"only_{name}", states=("a",))
    cell.let("a", REGISTRY[name].function(cell.affine("W_a", [cell.x], "b_a")))
    return symrnn.load(cell.build())


def test_every_activation_has_a_reference():
    assert set(REFERENCE) == set(REGISTRY)


@pytest.mark.parametrize("name", sorted(REFERENCE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_form_matches_the_closed_form(name, dtype):
    module = _single(name)
    z = np.linspace(-8, 8, 33, dtype=dtype)  # includes 0 and +-3, the kinks
    params = {"W_a": z[:, None], "b_a": np.zeros(33, dtype)}  # H = 33 units, D = 1
    y, _, _ = module.forward(params, np.ones((1, 1, 1), dtype))  # pre-activation = z
    assert y.dtype == dtype
    np.testing.assert_allclose(y[0, 0], REFERENCE[name](z.astype(np.float64)),
                               rtol=1e-6 if dtype == np.float32 else 1e-14, atol=1e-7)


@pytest.mark.parametrize("name, kink, slope_inside", [("relu", 0.0, 1.0),
                                                      ("hard_sigmoid", 3.0, 1 / 6),
                                                      ("hard_sigmoid", -3.0, 1 / 6)])
def test_derivative_is_zero_at_a_kink(name, kink, slope_inside):
    """The convention: at a kink the derivative is taken as 0; just inside it is the slope."""
    module = _single(name)
    for z, slope in ((kink, 0.0), (kink / 2 if kink else 1.0, slope_inside)):
        params = {"W_a": np.zeros((1, 1)), "b_a": np.array([z])}
        y, _, cache = module.forward(params, np.ones((1, 1, 1)))
        grads, _, _ = module.backward(params, cache, np.ones_like(y))
        assert grads["b_a"][0] == pytest.approx(slope, abs=0), (z, grads["b_a"])


@pytest.mark.parametrize("name", sorted(n for n in REGISTRY if REGISTRY[n].tanh_form))
def test_tanh_form_is_the_definition(name):
    """scale*tanh(inside*z) + shift, written with exp, equals the definition for every z."""
    entry, z = REGISTRY[name], sp.Symbol("z", real=True)
    inside, scale, shift = entry.tanh_form
    via_tanh = scale * (2 / (1 + sp.exp(-2 * inside * z)) - 1) + shift
    assert sp.simplify(via_tanh - entry.definition(z, sp.exp)) == 0


def test_verify_passes_with_every_activation():
    checks = verify(symrnn.derive(build_kinked()), steps=2)
    assert checks and all(c.ok for c in checks), [c for c in checks if not c.ok]
