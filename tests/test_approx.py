"""The float32 exp, log and log1p of symrnn.approx (which the numba loops use instead of libm's
expf, logf and log1pf, which do not vectorise): their stated errors, their edge cases against
NumPy's, their dtypes, and the template's scalar code compiled by numba against the NumPy
reference, bit for bit."""

import contextlib
import ctypes
import glob
import os
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import needs_numba

from symrnn import approx
from symrnn.render import environment

F32 = np.float32
INF, NAN = F32(np.inf), F32(np.nan)
FUNCTIONS = {  # name: (approximation, NumPy's, measured error, stated error)
    "exp": (approx.exp32, np.exp, approx.max_error_exp, approx.MAX_ERROR_EXP),
    "log": (approx.log32, np.log, approx.max_error_log, approx.MAX_ERROR_LOG),
    "log1p": (approx.log1p32, np.log1p, approx.max_error_log1p, approx.MAX_ERROR_LOG1P),
}


def same(a, b):
    """Equal arrays, NaN where NaN."""
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def ulps(a, b):
    """How many float32 steps apart a and b are, element by element (0 where both are NaN)."""
    def ordered(v):
        bits = np.asarray(v, dtype=F32).view(np.int32).astype(np.int64)
        return np.where(bits < 0, -(bits & 0x7FFFFFFF), bits)
    return np.where(np.isnan(a) & np.isnan(b), 0, np.abs(ordered(a) - ordered(b)))


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_max_error_is_as_stated(name):
    _, _, measure, stated = FUNCTIONS[name]
    measured = measure()
    assert measured <= stated, f"{name}: {measured:.3g} > {stated}"
    assert measured > 1e-8, "not an approximation any more: restate the error"


def test_fitting_reproduces_the_coefficients():
    np.testing.assert_allclose(approx.fit_exp(), approx.EXP_COEFFICIENTS, rtol=1e-6)
    np.testing.assert_allclose(approx.fit_log(), approx.LOG_COEFFICIENTS, rtol=1e-6)


def test_exp_edge_cases_are_numpys():
    high = F32(approx.EXP_HIGH)
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, np.nextafter(high, INF), 89, 1e30,
                  -103.98, -104, -1e30, 1e-30, -1e-30], dtype=F32)
    with np.errstate(over="ignore"):
        expected = np.exp(x)
    assert same(approx.exp32(x), expected)
    assert np.isfinite(approx.exp32(high)) and approx.exp32(np.nextafter(high, INF)) == INF


def test_exp_of_subnormal_results_is_within_two_steps():
    x = np.linspace(-104, -87.3, 200_001).astype(F32)
    got = approx.exp32(x).astype(np.float64)
    assert np.max(np.abs(got - np.exp(x.astype(np.float64)))) <= 2 * 2.0**-149  # 2 steps
    assert np.all(np.diff(got) >= 0)


def test_log_edge_cases_are_numpys():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, -1e-45, -1.0, 1.0, 2.0, 3.4e38],
                 dtype=F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.log(x)
    assert same(approx.log32(x), expected)


def test_log_of_subnormals_is_accurate():
    x = (np.arange(1, 2**23, 997, dtype=np.int32)).view(F32)  # subnormals from 2^-149 up
    exact = np.log(x.astype(np.float64))
    assert np.max(np.abs(approx.log32(x) / exact - 1)) <= approx.MAX_ERROR_LOG


def test_log1p_edge_cases_are_numpys():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -1.0, -1.0000001, -2.0, -0.99999994, 3.4e38],
                 dtype=F32)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = np.log1p(x)
    assert same(approx.log1p32(x), expected)


def test_log1p_keeps_its_relative_accuracy_near_0():
    small = np.geomspace(1e-38, 1e-3, 20_001)
    x = np.concatenate([small, -small]).astype(F32)
    exact = np.log1p(x.astype(np.float64))
    assert np.max(np.abs(approx.log1p32(x) / exact - 1)) <= approx.MAX_ERROR_LOG1P
    tiny = np.array([1e-30, -1e-30, 1e-10], dtype=F32)
    assert same(approx.log1p32(tiny), tiny)  # log(1 + x) would give 0 there


@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_float32_in_float32_out(name):
    function = FUNCTIONS[name][0]
    x = np.full((3, 4), 0.5, dtype=F32)
    y = function(x)
    assert y.dtype == F32 and y.shape == (3, 4)
    assert isinstance(function(F32(0.5)), F32)
    with pytest.raises(TypeError):
        function(x.astype(np.float64))


def helpers(functions):
    """The template's helpers block for kernels that call these functions, as source."""
    template = environment().get_template("numba/module.py.j2")
    context = template.new_context({"tanh32": approx,
                                    "loops": types.SimpleNamespace(functions=functions)})
    return "".join(template.blocks["helpers"](context))


def test_each_helper_is_emitted_only_when_the_kernels_call_it():
    assert "_exp(" not in helpers(()) and "_float_bits" not in helpers(())
    text = helpers(("log1p",))
    assert "def _log1p(x):" in text and "def _log(x):" not in text and "def _exp(" not in text
    assert "def _float_bits(" in text and "def _muladd(" in text


FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}  # the template's _JIT


@pytest.fixture(scope="module")
def compiled():
    """A numba kernel through the template's _exp, _log, _log1p (compiled as the loops are)."""
    import numba
    import numba.extending

    jit = dict(nogil=True, error_model="numpy", fastmath=FASTMATH)  # _JIT without the cache
    space = {"np": np, "numba": numba, "ctypes": ctypes, "glob": glob, "os": os, "_JIT": jit,
             "_OVERLOADS": jit, "_compiled": numba.njit(**jit),  # the module's, uncached
             "contextlib": contextlib, "threading": threading,
             "ThreadPoolExecutor": ThreadPoolExecutor, "__name__": "helpers"}
    exec(compile(helpers(("exp", "log", "log1p")), "<helpers>", "exec"), space)
    exp, log, log1p = space["_exp"], space["_log"], space["_log1p"]

    @numba.njit(**jit)
    def kernel(x, out):
        for i in range(x.size):
            out[0, i] = exp(x[i])
            out[1, i] = log(x[i])
            out[2, i] = log1p(x[i])

    def run(x):
        out = np.empty((3, x.size), dtype=x.dtype)
        kernel(x, out)
        return out
    return run


@needs_numba
def test_compiled_float32_code_is_the_numpy_reference(compiled):
    rng = np.random.default_rng(0)
    x = np.concatenate([
        rng.integers(0, 2**32, 300_000, dtype=np.uint32).view(F32),  # every kind of float
        np.concatenate([np.linspace(-110, 95, 200_001), np.geomspace(1e-45, 3e38, 100_001),
                        np.linspace(-1.01, 2, 200_001),
                        [np.nan, np.inf, -np.inf, 0, -1, approx.EXP_HIGH]]).astype(F32)])
    got = compiled(x)
    for row, name in enumerate(FUNCTIONS):
        reference = FUNCTIONS[name][0](x)
        apart = ulps(got[row], reference)
        # bit for bit with FMA (x86-64 since 2013, AArch64); a float32 step without it
        assert apart.max() <= 1, f"{name}: {apart.max()} float32 steps from the reference"


@needs_numba
def test_compiled_float64_code_is_libms(compiled):
    x = np.array([-700.0, -1.0, 0.0, 1e-300, 0.5, 3.0, 700.0])
    got = compiled(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        for row, exact in enumerate((np.exp(x), np.log(x), np.log1p(x))):
            np.testing.assert_allclose(got[row], exact, rtol=1e-15)
