"""Float32 tanh, exp, log and log1p that compiled loops can vectorise (libm's ``tanhf``, ``expf``,
``logf`` and ``log1pf`` are a call per element, so LLVM cannot vectorise a loop that calls them).

Each function here is NumPy code that computes, in float32, exactly what the numba loops compute
(templates/numba/module.py.j2, ``_tanh``, ``_exp``, ``_log``, ``_log1p``), with the fitted
coefficients below; ``max_error*`` measures it against float64 NumPy, and the ``MAX_ERROR*``
constants are those measurements rounded up (tests/test_numba.py, tests/test_approx.py check them).
float64 code keeps libm.

tanh: ``tanh(x) ~ x P(x^2) / Q(x^2)`` for ``|x| <= CLAMP`` (beyond it, ``tanh(x)`` is +-1 to
float32 precision: ``1 - tanh(9) = 3.0e-8``, half a float32 step below 1), with P and Q of degree 4
in ``x^2``. The coefficients were fitted here by ``fit`` (weighted least squares on the relative
error, re-weighted until it settles: Sanathanan-Koerner), then rounded to float32. Measured by
``max_error``: the largest relative error, evaluated in float32 against float64 ``np.tanh`` over
[-10, 10], is ``MAX_ERROR`` (3.4e-7, about 3 float32 steps near 1). The backward uses ``1 - y^2``
of this ``y``, which differs from the exact derivative of the approximation by the same relative
order.

exp (``exp32``): ``x = k ln 2 + r`` with ``k = floor(x / ln 2 + 1/2)`` and ``|r| <= ln(2)/2``
(``r`` from two multiply-adds with ln 2 split in ``LN2_HI + LN2_LO``, the first exact), ``exp(r) ~
1 + r (c1 + r (c2 + ...))`` (``EXP_COEFFICIENTS``, degree 6, fitted by ``fit_exp``: minimax
relative error by Lawson's iteration, then rounded to float32), and the product by ``2^k`` is the
integer addition of ``k`` to the exponent bits. Below the normal range (``k < -125``) the bits get
``k + 64`` and the result is multiplied by ``2^-64``, so subnormal results are rounded once (within
2 subnormal steps of ``np.exp``; 0 for ``x <= -104``); ``x > EXP_HIGH`` (88.72) gives inf,
``exp(-inf) = 0``, ``exp(inf) = inf``, NaN stays NaN. Largest relative error over [-87, 88]
(every normal result): ``MAX_ERROR_EXP`` (8.8e-8, under one float32 step).

log (``log32``): ``x = 2^e m`` with ``m`` in ``[sqrt(1/2), sqrt(2))`` from the bits (a subnormal
``x`` is first multiplied by ``2^23``), ``f = m - 1`` (exact), ``log(1 + f) = 2s + s R(s^2)`` with
``s = f / (2 + f)``, computed as ``f - (f^2/2 - s (f^2/2 + R))`` so that the division's rounding
only touches a small correction; ``R(z) = z (c1 + z (c2 + z c3))`` (``LOG_COEFFICIENTS``, fitted
by ``fit_log`` as exp's), then ``+ e ln 2`` in two multiply-adds (``e LN2_HI`` exact). ``log(0) =
-inf``, ``log(x < 0) = nan``, ``log(inf) = inf``, NaN stays NaN. Largest relative error over the
positive floats from 1.4e-45 (subnormals included) to 3.4e38, and densely near 1:
``MAX_ERROR_LOG`` (8.2e-8).

log1p (``log1p32``): for ``x`` in ``LOG1P_DIRECT`` (``[sqrt(1/2) - 1, sqrt(2) - 1)``) the same
``log(1 + f)`` with ``f = x`` itself, so a tiny ``x`` keeps its relative accuracy (``log1p(x) = x``
for ``|x| < 1e-8``); elsewhere ``log`` of ``u = 1 + x`` rounded, whose rounding (2^-24 relative at
most: 6e-8 in ``log(u)``, which is at least ln(sqrt(2)) = 0.35 there) is most of the error.
``log1p(-1) = -inf``, ``log1p(x < -1) = nan``, ``log1p(inf) = inf``, NaN stays NaN. Largest
relative error over [-0.999, 1e6], densely near 0: ``MAX_ERROR_LOG1P`` (1.9e-7).

The loops' multiply-adds are fused on a machine with FMA (numba's ``contract``, and the explicit
``llvm.fmuladd`` where the order matters: fastmath's ``reassoc`` would otherwise merge ``k LN2_HI +
k LN2_LO`` into ``k float32(ln 2)``, 2e-7 off at ``|x| = 88``). ``exp32``, ``log32`` and
``log1p32`` round each multiply-add once too (in float64, where the product of two float32 is
exact), so they agree with the compiled loops bit for bit (tests/test_approx.py; on a machine
without FMA the loops round twice, within a float32 step of these). The loops may lose the sign
of a zero result (``nsz``). ``tanh32`` rounds its multiplications and additions separately.
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


# --------------------------------------------------------------------------------------------
# exp, log and log1p (see the module docstring). The constants are float32 values.
# --------------------------------------------------------------------------------------------

LOG2E = 1.4426950408889634  # 1 / ln 2
LN2_HI = 0.693359375  # 355/512, 9 bits: k LN2_HI is exact, and so is x - k LN2_HI
LN2_LO = -0.00021219444170128554  # float32(ln 2 - LN2_HI)
EXP_HIGH = 88.72283172607422  # the largest float32 whose exp is finite in float32
EXP_CLAMP = (-104.0, 89.0)  # x is clamped to it: exp(-104) rounds to 0, exp(89) overflows
EXP_REDUCED = 0.35  # |r| <= ln(2)/2 = 0.3466, a little more from the rounding of x / ln 2
EXP_COEFFICIENTS = (1.0, 0.4999999403953552, 0.1666642129421234, 0.041668057441711426,
                    0.008374955505132675, 0.001384272240102291)  # exp(r) ~ 1 + r (c[0] + r (...))
SQRT_HALF_BITS = 0x3F3504F3  # the bits of float32(sqrt(1/2)) = 0.70710677
LOG1P_DIRECT = (-0.2928932309150696, 0.41421353816986084)  # float32(sqrt(1/2)) - 1, 2 x it - 1
LOG_REDUCED = 0.1716  # |s| <= (sqrt(2) - 1) / (sqrt(2) + 1) = 0.171573
LOG_COEFFICIENTS = (0.6666677594184875, 0.39977559447288513,
                    0.2987136244773865)  # R(z) = z (c[0] + z (c[1] + z c[2]))
# Relative, float32 evaluation. max_error_exp() is 8.70e-8 (8.79e-8 with points=2_000_001),
# max_error_log() 8.06e-8 (8.11e-8), max_error_log1p() 1.86e-7 (1.88e-7).
MAX_ERROR_EXP = 8.8e-8
MAX_ERROR_LOG = 8.2e-8
MAX_ERROR_LOG1P = 1.9e-7


def _float32(x):
    """x as a float32 array (a TypeError for another dtype: the bit manipulation is float32's)."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise TypeError(f"the float32 approximations take float32, not {x.dtype}")
    return x


def _muladd(a, b, c):
    """a b + c rounded once to float32, as the loops' fused multiply-adds (here in float64, where
    the product of two float32 is exact)."""
    return (np.asarray(a, np.float64) * np.float64(b) + np.asarray(c, np.float64)).astype(
        np.float32)


def _polynomial(coefficients, x):
    """c[0] + x (c[1] + x (c[2] + ...)) in float32, Horner's steps fused multiply-adds."""
    y = np.full(x.shape, coefficients[-1], dtype=np.float32)
    for c in coefficients[-2::-1]:
        y = _muladd(y, x, np.float32(c))
    return y


def exp32(x):
    """exp of float32 x, computed as the compiled loops do (see the module docstring)."""
    x = _float32(x)
    f32, i32 = np.float32, np.int32
    low, high = f32(EXP_CLAMP[0]), f32(EXP_CLAMP[1])
    with np.errstate(all="ignore"):
        xc = np.where(x < high, x, high)  # NaN -> high: the integer steps see only numbers
        xc = np.where(xc > low, xc, low)
        kf = np.floor(_muladd(xc, f32(LOG2E), f32(0.5)))
        r = _muladd(kf, f32(-LN2_HI), xc)  # exact
        r = _muladd(kf, f32(-LN2_LO), r)
        p = _muladd(_polynomial(EXP_COEFFICIENTS, r), r, f32(1))  # exp(r), in [0.70, 1.42]
        k = kf.astype(i32)
        small = k < -125  # 2^k p is subnormal or 0: 2^(k + 64) p, then times 2^-64
        bits = p.view(i32) + ((k + np.where(small, i32(64), i32(0))) << 23)
        y = bits.view(f32) * np.where(small, f32(2.0**-64), f32(1))
        y = np.where(x <= f32(EXP_HIGH), y, x * f32(np.inf))  # inf above, NaN stays NaN
    return y.astype(np.float32)[()]  # a float32 scalar for a scalar x


def _log_reduced(f):
    """log(1 + f) for f in about [sqrt(1/2) - 1, sqrt(2) - 1], in float32."""
    f32 = np.float32
    s = f / (f32(2) + f)
    z = s * s
    half_square = f32(0.5) * f * f
    t = _muladd(_polynomial(LOG_COEFFICIENTS, z), z, half_square)  # f^2/2 + R(z)
    return f - _muladd(-s, t, half_square)  # 2s + s R(z) = f - (f^2/2 - s (f^2/2 + R))


def _exponent_mantissa(x):
    """(e, m) with x = 2^e m and m in [sqrt(1/2), sqrt(2)), for positive normal float32 x; e as
    float32, exact."""
    i32 = np.int32
    t = x.view(i32) - i32(SQRT_HALF_BITS)
    m = ((t & i32(0x7FFFFF)) + i32(SQRT_HALF_BITS)).view(np.float32)
    return (t >> 23).astype(np.float32), m


def _plus_e_ln2(e, y):
    """e ln 2 + y, with e LN2_HI exact and one rounding at the end."""
    return _muladd(e, np.float32(LN2_HI), _muladd(e, np.float32(LN2_LO), y))


def log32(x):
    """log of float32 x, computed as the compiled loops do (see the module docstring)."""
    x = _float32(x)
    f32 = np.float32
    with np.errstate(all="ignore"):
        tiny = x < f32(2.0**-126)  # subnormal (or <= 0): scaled by 2^23 first
        e, m = _exponent_mantissa(np.where(tiny, x * f32(2.0**23), x))
        e = e - np.where(tiny, f32(23), f32(0))
        y = _plus_e_ln2(e, _log_reduced(m - f32(1)))
        special = np.where(x == 0, f32(-np.inf), np.where(x > 0, x, f32(np.nan)))
        y = np.where((x > 0) & (x < f32(np.inf)), y, special)  # 0, < 0, inf and NaN
    return y.astype(np.float32)[()]  # a float32 scalar for a scalar x


def log1p32(x):
    """log(1 + x) of float32 x, computed as the compiled loops do (see the module docstring)."""
    x = _float32(x)
    f32 = np.float32
    with np.errstate(all="ignore"):
        u = x + f32(1)
        direct = (x >= f32(LOG1P_DIRECT[0])) & (x < f32(LOG1P_DIRECT[1]))
        e, m = _exponent_mantissa(u)
        y = _log_reduced(np.where(direct, x, m - f32(1)))
        y = np.where(direct, y, _plus_e_ln2(e, y))
        special = np.where(u == 0, f32(-np.inf), np.where(u > 0, u, f32(np.nan)))
        y = np.where((u > 0) & (u < f32(np.inf)), y, special)  # -1, < -1, inf and NaN
    return y.astype(np.float32)[()]  # a float32 scalar for a scalar x


def _relative_error(function, exact, x):
    """The largest relative error of function(x) (float32) against exact(float64 x)."""
    x = np.asarray(x, dtype=np.float32)
    reference = exact(x.astype(np.float64))
    got = function(x).astype(np.float64)
    keep = (reference != 0) & np.isfinite(reference)
    return float(np.max(np.abs(got[keep] - reference[keep]) / np.abs(reference[keep])))


def max_error_exp(points=1_000_001):
    """The largest relative error of ``exp32`` against float64 ``np.exp`` over [-87, 88] (where
    exp is a normal float32) and near 0."""
    small = np.geomspace(1e-30, 1, points // 10)
    x = np.concatenate([np.linspace(-87, 88, points), small, -small])
    return _relative_error(exp32, np.exp, x)


def max_error_log(points=1_000_001):
    """The largest relative error of ``log32`` against float64 ``np.log`` over the positive
    float32 (subnormals included), and densely near 1."""
    near_one = np.arange(-(points // 10), points // 10) * 2.0**-24
    x = np.concatenate([np.geomspace(1.5e-45, 3.4e38, points), 1 + near_one,
                        np.linspace(0.5, 2, points // 2)])
    return _relative_error(log32, np.log, x)


def max_error_log1p(points=1_000_001):
    """The largest relative error of ``log1p32`` against float64 ``np.log1p`` over [-0.999, 1e6],
    densely near 0."""
    small = np.geomspace(1e-30, 0.5, points // 4)
    x = np.concatenate([np.linspace(-0.999, 1, points), np.geomspace(1, 1e6, points // 4),
                        small, -small])
    return _relative_error(log1p32, np.log1p, x)


def _lawson(system, target, rounds):
    """The coefficients c minimising max |system c - target| (Lawson: least squares re-weighted
    by the residuals, which converges to the minimax solution)."""
    weight = np.full(target.size, 1 / target.size)
    for _ in range(rounds):
        root = np.sqrt(weight)
        coef, *_ = np.linalg.lstsq(system * root[:, None], target * root, rcond=None)
        residual = np.abs(system @ coef - target)
        weight = weight * residual
        weight /= weight.sum()
    return coef


def _nodes(low, high, points):
    """Chebyshev points on [low, high] (dense at the ends, where minimax errors peak)."""
    k = np.arange(points)
    return low + (high - low) * (1 - np.cos(np.pi * (k + 0.5) / points)) / 2


def fit_exp(degree=6, rounds=150, points=2000):
    """Refit EXP_COEFFICIENTS (float64, before rounding): p(r) = 1 + sum_j c[j-1] r^j of the
    given degree, minimax relative error to exp on [-EXP_REDUCED, EXP_REDUCED]."""
    r = _nodes(-EXP_REDUCED, EXP_REDUCED, points)
    inverse = np.exp(-r)
    system = r[:, None] ** np.arange(1, degree + 1) * inverse[:, None]  # (p - exp r) / exp r
    return tuple(_lawson(system, 1 - inverse, rounds))


def fit_log(degree=3, rounds=150, points=2000):
    """Refit LOG_COEFFICIENTS (float64, before rounding): log(1 + f) = 2s + s R(s^2), R(z) =
    sum_j c[j-1] z^j of the given degree, minimax relative error on |s| <= LOG_REDUCED."""
    s = _nodes(0, LOG_REDUCED, points)
    exact = np.log1p(2 * s / (1 - s))  # log((1 + s) / (1 - s)), f = 2s / (1 - s)
    system = (s[:, None] * (s * s)[:, None] ** np.arange(1, degree + 1)) / exact[:, None]
    return tuple(_lawson(system, (exact - 2 * s) / exact, rounds))
