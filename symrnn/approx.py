"""A float32 tanh that compiled loops can vectorise (libm's ``tanhf`` is a call per element).

``tanh(x) ~ x P(x^2) / Q(x^2)`` for ``|x| <= CLAMP`` (beyond it, ``tanh(x)`` is +-1 to float32
precision: ``1 - tanh(9) = 3.0e-8``, half a float32 step below 1), with P and Q of degree 4 in
``x^2``. The coefficients were fitted here by ``fit`` (weighted least squares on the relative error,
re-weighted until it settles: Sanathanan-Koerner), then rounded to float32.

Measured by ``max_error`` (tests/test_numba.py checks it): the largest relative error, evaluated in
float32 against float64 ``np.tanh`` over [-10, 10], is ``MAX_ERROR`` (3.4e-7, about 3 float32
steps near 1). The backward uses ``1 - y^2`` of this ``y``, which differs from the exact
derivative of the approximation by the same relative order. float64 code keeps libm's tanh.
"""

import numpy as np

CLAMP = 9.0
NUMERATOR = (1.0, 0.13387525081634521, 0.0035032264422625303, 2.073142422887031e-05,
             1.3517553298925122e-08)  # P(s) = sum_k NUMERATOR[k] s^k
DENOMINATOR = (1.0, 0.4672084450721741, 0.02590625174343586, 0.0003297983785159886,
               7.844648735044757e-07)  # Q(s)
MAX_ERROR = 3.4e-7  # relative, float32 evaluation (see the module docstring)


def tanh32(x):
    """The approximation, evaluated in NumPy in the dtype of x, exactly as the loops do."""
    dtype = x.dtype.type
    x = np.clip(x, dtype(-CLAMP), dtype(CLAMP))
    s = x * x
    numerator, denominator = dtype(NUMERATOR[-1]), dtype(DENOMINATOR[-1])
    for p, q in zip(NUMERATOR[-2::-1], DENOMINATOR[-2::-1], strict=True):
        numerator = numerator * s + dtype(p)
        denominator = denominator * s + dtype(q)
    return x * numerator / denominator


def max_error(points=2_000_001):
    """The largest relative error of ``tanh32`` in float32 against float64 ``np.tanh``."""
    x = np.linspace(-10, 10, points).astype(np.float32)
    exact = np.tanh(x.astype(np.float64))
    got = tanh32(x).astype(np.float64)
    nonzero = exact != 0
    return float(np.max(np.abs(got[nonzero] - exact[nonzero]) / np.abs(exact[nonzero])))


def fit(degree=4, clamp=CLAMP, rounds=30):
    """Refit the coefficients: (numerator, denominator) in float64, before rounding."""
    k = np.arange(4000)
    x = np.concatenate([clamp * (1 - np.cos(np.pi * (k + 0.5) / k.size)) / 2,
                        np.linspace(1e-4, clamp, 4000)])
    t, s = np.tanh(x), x * x
    powers = s[:, None] ** np.arange(degree + 1)
    q = np.ones_like(x)
    for _ in range(rounds):
        weight = 1 / (t * q)  # relative error, re-weighted by the last denominator
        system = np.concatenate([x[:, None] * powers, -t[:, None] * powers[:, 1:]], axis=1)
        coef, *_ = np.linalg.lstsq(system * weight[:, None], t * weight, rcond=None)
        numerator, denominator = coef[:degree + 1], np.concatenate([[1.0], coef[degree + 1:]])
        q = powers @ denominator
    return tuple(numerator), tuple(denominator)
