"""The numba backend (symrnn generate --backend numba): the same contract as the NumPy module
(test_module_contract runs on both), gradients against finite differences, agreement with the
NumPy module, its float32 tanh, compile-once caching, and a clear error without numba."""

import contextlib
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import (
    BUILTIN_CELLS,
    CUSTOM_CELLS,
    FD_TOL,
    ROOT,
    get_cell,
    gradient_errors,
    load_module,
    max_rel_err,
    needs_numba,
    one_block_per_sample,
    random_problem,
)

import symrnn
from symrnn import approx, cli

ALL_CELLS = BUILTIN_CELLS + tuple(CUSTOM_CELLS)


@needs_numba
@pytest.mark.parametrize("blocks", ["one block", "one block per sample"])
@pytest.mark.parametrize("name", ALL_CELLS)
def test_backward_matches_finite_differences_and_the_numpy_module(name, blocks):
    mod = load_module(name, "numba")
    with one_block_per_sample(mod) if blocks != "one block" else contextlib.nullcontext():
        _matches_finite_differences_and_the_numpy_module(name, mod)


def _matches_finite_differences_and_the_numpy_module(name, mod):
    errors = gradient_errors(mod, seed=1)
    assert min(g for _, g in errors.values()) > 1e-3, "degenerate test problem"
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert not bad, f"{name}: max relative error vs finite differences >= {FD_TOL}: {bad}"

    reference = load_module(name, "numpy")
    for dtype, tol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        inputs = {}  # gru_d's dt
        params, x, state0, G, Gs = random_problem(reference, seed=3, dtype=dtype, inputs=inputs)
        outputs = []
        for module in (reference, mod):
            y, state_T, cache = module.forward(params, x, state0, **inputs)
            grads, dx, dstate0, *dinputs = module.backward(params, cache, G, Gs)
            outputs.append([y, dx] + [grads[k] for k in module.PARAMS]
                           + [state_T[s] for s in module.STATES]
                           + [dstate0[s] for s in module.STATES]
                           + [d[k] for d in dinputs for k in sorted(d)])
        for a, b in zip(*outputs, strict=True):
            assert b.dtype == dtype
            assert max_rel_err(a, b) < tol, (name, dtype)


def test_float32_tanh_approximation_error_is_as_stated():
    measured = approx.max_error()
    assert measured <= approx.MAX_ERROR
    assert measured > 1e-8, "not an approximation any more: restate MAX_ERROR"
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -20.0, 20.0], dtype=np.float32)
    y = approx.tanh32(x)
    assert np.isnan(y[0]) and list(y[1:]) == [1, -1, 0, -1, 1]


def test_fitting_reproduces_the_coefficients():
    numerator, denominator = approx.fit()
    np.testing.assert_allclose(numerator, approx.NUMERATOR, rtol=1e-5)
    np.testing.assert_allclose(denominator, approx.DENOMINATOR, rtol=1e-5)


@needs_numba
@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_float32_outputs_agree_with_float64(name):
    """Over 200 steps, the float32 module (approximate tanh) stays within 1e-6 (relative, in
    norm) of the float64 one (libm tanh)."""
    mod = load_module(name, "numba")
    params = mod.init_params(8, 32, rng=0)
    x = np.random.default_rng(1).standard_normal((200, 4, 8))
    y64 = mod.forward(params, x)[0]
    y32 = mod.forward({k: v.astype(np.float32) for k, v in params.items()},
                      x.astype(np.float32))[0]
    assert y32.dtype == np.float32
    assert np.linalg.norm(y32 - y64) / np.linalg.norm(y64) < 1e-6


_RUN = """
import json, numpy as np
from generated import lstm_numba as m
p = m.init_params(3, 4, rng=0, dtype=np.float32)
y, s, c = m.forward(p, np.ones((2, 1, 3), np.float32))
m.backward(p, c, np.ones_like(y))
print(json.dumps({f.__name__: [sum(f.stats.cache_hits.values()), sum(f.stats.cache_misses.values())]
                  for f in (m._forward_steps, m._backward_steps)}))
"""


@needs_numba
def test_compiled_once_then_loaded_from_numbas_cache(tmp_path):
    assert cli.main(["generate", "lstm", "--backend", "numba", "-o",
                     str(tmp_path / "generated")]) == 0
    runs = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _RUN], cwd=tmp_path, capture_output=True,
                              text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
        assert proc.returncode == 0, proc.stderr
        runs.append(json.loads(proc.stdout))
    for kernel in ("_forward_steps", "_backward_steps"):
        assert runs[0][kernel] == [0, 1], runs  # compiled, then saved
        assert runs[1][kernel] == [1, 0], runs  # loaded, nothing compiled
    assert list((tmp_path / "generated" / "__pycache__").glob("lstm_numba.*.nbc"))


_UNDER = """
import importlib.util, sys
import numpy as np
name = sys.argv[1]
if name == "generated.lstm_numba":
    from generated import lstm_numba as m
else:
    spec = importlib.util.spec_from_file_location(name, "generated/lstm_numba.py")
    m = importlib.util.module_from_spec(spec)
    sys.modules[name] = m
    spec.loader.exec_module(m)
p = m.init_params(3, 4, rng=0, dtype=np.float32)
y, s, c = m.forward(p, np.ones((5, 2, 3), np.float32))
m.backward(p, c, np.ones_like(y))
print(float(y.sum()))
"""


@needs_numba
def test_cache_written_under_one_name_does_not_break_another(tmp_path):
    """Issue 16: float32 kernels cached while the module was loaded as 'some_name' made a later
    `from generated import lstm_numba` fail with ModuleNotFoundError: No module named
    'some_name' (the cached code finds the module's other functions by its name)."""
    assert cli.main(["generate", "lstm", "--backend", "numba", "-o",
                     str(tmp_path / "generated")]) == 0
    outputs = []
    for name in ("some_name", "generated.lstm_numba", "some_name", "other_name"):
        proc = subprocess.run([sys.executable, "-c", _UNDER, name], cwd=tmp_path,
                              capture_output=True, text=True)
        assert proc.returncode == 0, (name, proc.stderr.strip().splitlines()[-1:])
        outputs.append(proc.stdout)
    assert len(set(outputs)) == 1


def test_module_without_numba_says_what_to_install():
    code = ("import sys; sys.modules['numba'] = None\n"
            "from generated import lstm_numba\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "pip install 'symrnn[numba]'" in proc.stderr.strip().splitlines()[-1]


def test_generate_without_numba_is_a_one_line_error(tmp_path, without_numba, capsys):
    assert cli.main(["generate", "lstm", "--backend", "numba", "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'symrnn[numba]'" in err[0]
    assert not list(tmp_path.iterdir())


@needs_numba
def test_module_executed_outside_sys_modules_is_refused():
    """numba's cache would remember such a module as '<dynamic>' and fail every later import."""
    code = ("import importlib.util\n"
            "spec = importlib.util.spec_from_file_location('m', 'generated/lstm_numba.py')\n"
            "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1
    assert "import this module by a name in sys.modules" in proc.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("name", ALL_CELLS)
def test_no_fused_loop_touches_more_arrays_than_llvm_vectorises(name):
    """Every fused loop of a step reads and writes at most loops.MAX_ARRAYS arrays (with more,
    LLVM leaves it scalar: "too many memory checks needed"); counted here from the loop's code,
    a row view (Gamma_f_row = A_seq[t, b, :H]) as the array it views."""
    from symrnn.loops import MAX_ARRAYS, Loop, loops
    from symrnn.lower import lower

    derivation = symrnn.derive(get_cell(name))
    plan = lower(derivation)
    for direction, phases in (("forward", loops(derivation, plan).forward),
                              ("backward", loops(derivation, plan).backward)):
        # a loop of per-sample values alone runs once per sample: no loop over j to vectorise
        for phase in (p for p in phases if isinstance(p, Loop) and not p.per_sample):
            base = {v.split(" = ")[0]: re.match(r"(\w+)\[", v.split(" = ")[1]).group(1)
                    for v in phase.views}
            code = [line for line in phase.loads + phase.lines + phase.ends
                    if not line.startswith("#")]
            arrays = {base.get(a, a) for line in code for a in re.findall(r"(\w+)\[", line)}
            assert len(arrays) <= MAX_ARRAYS, f"{name} {direction}: {sorted(arrays)}"


def test_the_lstm_peephole_forward_is_cut_into_two_loops():
    """Its one loop would touch 13 arrays; the cut stores z_o for the second."""
    from symrnn.loops import loops
    from symrnn.lower import lower

    derivation = symrnn.derive("lstm_peephole")
    forward = loops(derivation, lower(derivation)).forward
    assert [type(p).__name__ for p in forward] == ["Gemm", "Loop", "Loop"]


@needs_numba
def test_the_batch_is_cut_into_one_block_per_blas_thread_when_large_enough(monkeypatch):
    mod = load_module("lstm", "numba")
    blas_threads = mod._blas_threads()
    monkeypatch.setattr(mod, "_blas_threads", lambda: 2)
    assert mod._blocks(100, 64) == [(0, 32), (32, 64)]
    assert mod._blocks(100, 33) == [(0, 16), (16, 33)]
    assert mod._blocks(100, 31) == [(0, 31)]  # a block has _MIN_BLOCK = 16 samples at least
    assert mod._blocks(1, 512) == [(0, 512)]  # T B < _MIN_WORK: the threads would cost more
    monkeypatch.setattr(mod, "_blas_threads", lambda: 1)  # as under threadpool_limits(1)
    assert mod._blocks(100, 64) == [(0, 64)]
    monkeypatch.undo()

    params = mod.init_params(3, 4, rng=0)
    x = np.random.default_rng(1).standard_normal((40, 40, 3))
    with one_block_per_sample(mod):
        y, _, cache = mod.forward(params, x)
        mod.backward(params, cache, y)
    assert mod._blas_threads() == blas_threads  # single-threaded only while the blocks ran


@needs_numba
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_small_products_by_loops_equal_the_blas(dtype):
    """A product of _SMALL_ROWS rows or fewer (a batch of one or two at a step) is made by loops;
    they equal NumPy's matmul for every k mod 4, beta 0 (over NaN) and 1, and the layouts the
    kernels pass (a column slice as a, a transposed b)."""
    mod = load_module("lstm", "numba")
    gemm, rng = mod._GEMM[np.dtype(dtype)], np.random.default_rng(0)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    for m in range(1, mod._SMALL_ROWS + 2):  # the last one through the BLAS
        for k in (1, 2, 3, 4, 5, 31, 32, 33):
            for n, beta in ((7, 0), (128, 1)):
                wide = rng.standard_normal((m, k + 3)).astype(dtype)
                a = wide[:, 1:k + 1]  # columns of a wider array, read in place
                b = np.ascontiguousarray(rng.standard_normal((n, k)).astype(dtype)).T
                out = rng.standard_normal((m, n)).astype(dtype)
                expected = a @ b + beta * out
                if beta == 0:
                    out[:] = np.nan  # never read
                mod._gemm(gemm, a, b, out, beta)
                assert max_rel_err(out, expected) < tol, (m, k, n, beta)


@needs_numba
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork is POSIX only")
def test_a_forked_process_runs_the_blocks_with_workers_of_its_own():
    """Workers made before a fork (as a data loader's processes are) exist in the parent only:
    the child makes its own instead of waiting forever for the parent's."""
    mod = load_module("lstm", "numba")
    params = mod.init_params(3, 4, rng=0)
    x = np.random.default_rng(1).standard_normal((6, 5, 3))
    with one_block_per_sample(mod):
        expected = mod.forward(params, x)[0].copy()  # the parent's workers now exist
        assert mod._WORKERS
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - runs in the child
            try:
                y = mod.forward(params, x)[0]
                os.write(write, b"same" if np.array_equal(y, expected) else b"differ")
            finally:
                os._exit(0)
        os.close(write)
        deadline = time.monotonic() + 60
        while os.waitpid(child, os.WNOHANG) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(child, 9)
                pytest.fail("the forked child did not finish in 60 s (waiting for workers)")
            time.sleep(0.05)
        assert os.read(read, 16) == b"same"
