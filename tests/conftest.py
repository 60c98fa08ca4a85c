"""Shared helpers for the symrnn test suite.

- ``ROOT``: the repository root (put on ``sys.path`` when symrnn is not installed).
- ``CUSTOM_CELLS``: user cells built with the DSL, to show the engine is not special-cased to the
  built-in cells.
- ``load_module``: a loaded generated module per cell, cached for the session (loading is pure).
- ``random_problem`` / ``fd_gradients`` / ``max_rel_err``: the central-finite-difference gradient
  check in float64 that every gradient test compares ``backward`` against.
"""

import contextlib
import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
try:  # pragma: no cover - depends on how the package is installed
    import symrnn  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(ROOT))
    import symrnn  # noqa: F401

import sympy as sp  # noqa: E402

from symrnn.activations import (  # noqa: E402
    elu,
    hard_sigmoid,
    identity,
    log1p,
    relu,
    sigmoid,
    silu,
    softplus,
    softsign,
    tanh,
)
from symrnn.cell import CellBuilder  # noqa: E402
from symrnn.cells import BUILTINS  # noqa: E402
from symrnn.reductions import mean  # noqa: E402

BUILTIN_CELLS = tuple(BUILTINS)  # rnn, gru, lstm, gru_torch, lstm_peephole, mgu

# Sizes for gradient checks: all different, so a transposed axis cannot hide.
T, B, D, H = 5, 2, 3, 4
EPS = 1e-5
FD_TOL = 1e-6
TINY = 1e-30


# --------------------------------------------------------------------------------------------
# Custom cells, written with the same DSL a user would use.
# --------------------------------------------------------------------------------------------


def build_nested():
    """Nested activation over an expression; two affine maps, one reading only x and one only
    a_prev, each with a bias; a gate mixing them inside the tanh."""
    cell = CellBuilder("nested", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    z1 = cell.affine("W_x", [x], "b_x")  # (H, D)
    z2 = cell.affine("W_h", [a_prev], "b_h")  # (H, H)
    Gamma = cell.let("Gamma", sigmoid(cell.affine("W_g", [a_prev, x], "b_g")))
    # tanh(...) is nested (not at the top of the equation): it must become its own node
    cell.let("a", Gamma * tanh(z1 + Gamma * z2) + (1 - Gamma) * a_prev)
    return cell.build()


def build_peephole():
    """LSTM with peephole vectors p_f, p_u (on c_prev) and p_o (on the new c)."""
    cell = CellBuilder("peephole", states=("a", "c"))
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    p_f, p_u, p_o = cell.param("p_f"), cell.param("p_u"), cell.param("p_o")
    Gamma_f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f") + p_f * c_prev))
    Gamma_u = cell.let("Gamma_u", sigmoid(cell.affine("W_u", [a_prev, x], "b_u") + p_u * c_prev))
    c_tilde = cell.let("c_tilde", tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    c = cell.let("c", Gamma_f * c_prev + Gamma_u * c_tilde)
    Gamma_o = cell.let("Gamma_o", sigmoid(cell.affine("W_o", [a_prev, x], "b_o") + p_o * c))
    cell.let("a", Gamma_o * tanh(c))
    return cell.build()


def build_gating():
    """A state's previous value multiplied by a nonlinearity: a = a_prev * sigmoid(z) + tanh(z2)."""
    cell = CellBuilder("gating", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    z = cell.affine("W_z", [a_prev, x], "b_z")
    z2 = cell.affine("W_y", [x], "b_y")  # (H, D)
    cell.let("a", a_prev * sigmoid(z) + tanh(z2))
    return cell.build()


def build_halves():
    """Rational constants (S(1)/2, 1/3), a square, and an elementwise parameter vector."""
    cell = CellBuilder("halves", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    w = cell.param("w")
    z = cell.affine("W_a", [a_prev, x], "b_a")
    cell.let("a", sp.S(1) / 2 * (a_prev + tanh(z)) + w * a_prev**2 / 3)
    return cell.build()


def build_mix():
    """Output state not called ``a``; x first in an affine map; an affine map without bias that
    reads an elementwise expression of two previous states; a three-input affine map."""
    cell = CellBuilder("mix", states=("h", "m"))
    h_prev, m_prev, x = cell.prev("h"), cell.prev("m"), cell.x
    Gamma = cell.let("Gamma", sigmoid(cell.affine("W_g", [x, h_prev, m_prev], "b_g")))  # (H, D+2H)
    m_in = cell.let("m_in", h_prev + sp.S(1) / 2 * m_prev)
    cand = cell.let("cand", tanh(cell.affine("W_m", [m_in, x])))  # no bias, (H, H+D)
    cell.let("m", Gamma * m_prev + (1 - Gamma) * cand)
    cell.let("h", tanh(cell.let("m_mix", sp.S(1) / 2 * (m_prev + cand))) * sigmoid(m_prev))
    return cell.build()


def build_kinked():
    """Every other activation: relu, softsign, hard_sigmoid, identity."""
    cell = CellBuilder("kinked", states=("a", "m"))
    a_prev, m_prev, x = cell.prev("a"), cell.prev("m"), cell.x
    g = cell.let("g", hard_sigmoid(cell.affine("W_g", [a_prev, x], "b_g")))
    m = cell.let("m", g * m_prev + (1 - g) * relu(cell.affine("W_m", [a_prev, x], "b_m")))
    cell.let("a", softsign(m) + identity(cell.affine("W_a", [x], "b_a")) / 2)
    return cell.build()


def build_functions():
    """SymPy's own functions (exp, log, log1p, sqrt, Abs, Max, Min, sin, cos, a rational power,
    a division by an expression) and the activations softplus, silu, elu, each where it is
    defined: log and powers of positive quantities, exp of bounded ones."""
    cell = CellBuilder("functions", states=("a", "c"))
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    u = cell.affine("W_u", [a_prev, x], "b_u")
    v = cell.affine("W_v", [x])  # no bias
    s = cell.let("s", softplus(u) + silu(v) / 4 + elu(cell.affine("W_e", [c_prev, x], "b_e")))
    g = cell.let("g", sp.exp(-sp.Abs(u)) * sp.log(1 + v**2) + log1p(sigmoid(v)))
    r = cell.let("r", sp.sqrt(c_prev**2 + 1) + (s + 1) ** sp.Rational(3, 2) / (2 + sp.Abs(g)))
    m = cell.let("m", sp.Max(a_prev, c_prev) - sp.Min(u, v) + sp.sin(r) * sp.cos(g))
    cell.let("c", tanh(m) * sigmoid(g) + c_prev / (1 + sp.exp(tanh(r))))
    cell.let("a", tanh(cell.affine("W_a", [s, r], "b_a") + c_prev))
    return cell.build()


def build_three_norm():
    """One normalisation over three gates together, written from a mean of each."""
    cell = CellBuilder("three_norm", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    z = [cell.affine(f"W_{k}", [a_prev, x], f"b_{k}") for k in "fio"]
    mu = cell.let("mu", sum(mean(zk) for zk in z) / 3)
    var = cell.let("var", sum(mean((zk - mu) ** 2) for zk in z) / 3)
    f, i, o = (cell.let(k, sigmoid((zk - mu) / sp.sqrt(var + sp.Rational(1, 100000))))
               for k, zk in zip("fio", z, strict=True))
    cell.let("a", f * a_prev + i * tanh(cell.affine("W_c", [a_prev, x], "b_c")) * o)
    return cell.build()


def build_deep():
    """A deep transition: an affine map that reads a gate directly (a second layer in the step),
    as both a gate and an input of the next map."""
    cell = CellBuilder("deep", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    g = cell.let("g", sigmoid(cell.affine("W_1", [a_prev, x], "b_1")))
    h = cell.let("h", tanh(cell.affine("W_2", [g], "b_2")))
    cell.let("a", g * a_prev + (1 - g) * tanh(cell.affine("W_3", [h, x])))
    return cell.build()


CUSTOM_CELLS = {
    "functions": build_functions,
    "three_norm": build_three_norm,
    "deep": build_deep,
    "kinked": build_kinked,
    "nested": build_nested,
    "peephole": build_peephole,
    "gating": build_gating,
    "halves": build_halves,
    "mix": build_mix,
}

# Expected parameter shapes of the custom cells, written by hand from their declarations.
CUSTOM_SHAPES = {
    "functions": lambda D, H: {"W_u": (H, H + D), "b_u": (H,), "W_v": (H, D),
                               "W_e": (H, H + D), "b_e": (H,), "W_a": (H, 2 * H), "b_a": (H,)},
    "three_norm": lambda D, H: {**{f"W_{k}": (H, H + D) for k in "fioc"},
                                **{f"b_{k}": (H,) for k in "fioc"}},
    "deep": lambda D, H: {"W_1": (H, H + D), "b_1": (H,), "W_2": (H, H), "b_2": (H,),
                          "W_3": (H, H + D)},
    "kinked": lambda D, H: {"W_g": (H, H + D), "b_g": (H,), "W_m": (H, H + D), "b_m": (H,),
                            "W_a": (H, D), "b_a": (H,)},
    "nested": lambda D, H: {"W_x": (H, D), "b_x": (H,), "W_h": (H, H), "b_h": (H,),
                            "W_g": (H, H + D), "b_g": (H,)},
    "peephole": lambda D, H: {**{f"W_{k}": (H, H + D) for k in "fuco"},
                              **{f"b_{k}": (H,) for k in "fuco"},
                              "p_f": (H,), "p_u": (H,), "p_o": (H,)},
    "gating": lambda D, H: {"W_z": (H, H + D), "b_z": (H,), "W_y": (H, D), "b_y": (H,)},
    "halves": lambda D, H: {"w": (H,), "W_a": (H, H + D), "b_a": (H,)},
    "mix": lambda D, H: {"W_g": (H, D + 2 * H), "b_g": (H,), "W_m": (H, H + D)},
}


def get_cell(name):
    if name in CUSTOM_CELLS:
        return CUSTOM_CELLS[name]()
    return symrnn.get_cell(name)


_MODULES = {}
BACKEND = "numpy"  # the backend load_module uses unless told; test_module_contract varies it
HAVE_NUMBA = importlib.util.find_spec("numba") is not None
needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="pip install 'symrnn[numba]'")


@pytest.fixture
def without_numba(monkeypatch):
    """The command line finds no numba, as on a machine without the extra."""
    from symrnn import cli

    real = cli.importlib.util.find_spec
    monkeypatch.setattr(cli.importlib.util, "find_spec",
                        lambda name, *a: None if name == "numba" else real(name, *a))


FUZZ_CELLS = 24  # --fuzz-cells: how many random cells tests/test_fuzz.py checks by default
FUZZ_SEED = 0  # --fuzz-seed: the seed of the first (cell k has seed FUZZ_SEED + k)


def pytest_addoption(parser):
    group = parser.getgroup("symrnn fuzz", "random cells (tests/test_fuzz.py)")
    group.addoption("--fuzz-cells", type=int, default=FUZZ_CELLS, metavar="N",
                    help=f"how many random cells to check (default {FUZZ_CELLS})")
    group.addoption("--fuzz-seed", type=int, default=FUZZ_SEED, metavar="S",
                    help=f"the seed of the first random cell; the others follow (default "
                         f"{FUZZ_SEED})")


@pytest.fixture(scope="session")
def fuzz_seeds(request):
    """The seeds of the random cells to check: --fuzz-seed, --fuzz-seed + 1, ..."""
    first = request.config.getoption("--fuzz-seed")
    return list(range(first, first + request.config.getoption("--fuzz-cells")))


def load_module(name, backend=None):
    """The generated module of a built-in or custom cell (cached; a NumPy module is compiled in
    memory, a numba one under $SYMRNN_CACHE, which the session points to a temporary directory)."""
    backend = backend or BACKEND
    if (name, backend) not in _MODULES:
        _MODULES[name, backend] = symrnn.load(get_cell(name), backend)
    return _MODULES[name, backend]


@contextlib.contextmanager
def one_block_per_sample(mod):
    """A numba module's batch cut into blocks of one sample each (its threads run them at once),
    whatever the batch, the sequence length and the BLAS's thread count."""
    rule = mod._blocks
    mod._blocks = lambda T, B: [(b, b + 1) for b in range(B)]
    try:
        yield
    finally:
        mod._blocks = rule


@pytest.fixture(scope="session", autouse=True)
def _numba_cache(tmp_path_factory):
    """numba modules and their machine code go to a temporary directory, not ~/.cache."""
    os.environ["SYMRNN_CACHE"] = str(tmp_path_factory.mktemp("symrnn_cache"))


@pytest.fixture(scope="session")
def lstm():
    return load_module("lstm")


# --------------------------------------------------------------------------------------------
# Random problems and the finite-difference check.
# --------------------------------------------------------------------------------------------


EXTRA_SIZES = (5, 6, 7)  # the sizes of P, ... in gradient checks: all different from D and H


def module_sizes(mod, D=D, H=H):
    """{"D": D, "H": H, "P": 5, ...}: a number for every size a module's vectors have."""
    named = sorted({v for v in getattr(mod, "SIZES", {}).values() if v not in ("D", "H", 1)})
    return {"D": D, "H": H, **dict(zip(named, EXTRA_SIZES, strict=False)), 1: 1}


def random_problem(mod, *, seed=0, T=T, B=B, D=D, H=H, dtype=np.float64, scale=0.5,
                   inputs=None):
    """Random params, x, non-zero state0, and fixed loss weights G (for y) and Gs (for state_T).
    ``inputs``: a dict to fill with the module's other inputs (``dt``), random, if it has any."""
    rng = np.random.default_rng(seed)
    sizes = module_sizes(mod, D, H)
    of = {name: sizes[size] for name, size in getattr(mod, "SIZES", {}).items()}
    extra = {k: v for k, v in sizes.items() if k not in ("D", "H", 1)}
    shapes = mod.param_shapes(D, H, **extra)
    params = {k: (scale * rng.standard_normal(tuple(shapes[k]))).astype(dtype) for k in mod.PARAMS}
    x = rng.standard_normal((T, B, D)).astype(dtype)
    others = {name: rng.standard_normal((T, B, of[name])).astype(dtype)
              for name in getattr(mod, "INPUTS", ("x",))[1:]}
    if others and inputs is None:
        raise ValueError(f"{mod.CELL} reads {sorted(others)}: pass inputs={{}} to receive them")
    if inputs is not None:
        inputs.update(others)
    width = {s: of.get(s, H) for s in mod.STATES}
    state0 = {s: (0.5 * rng.standard_normal((B, width[s]))).astype(dtype) for s in mod.STATES}
    G = rng.standard_normal((T, B, width[mod.STATES[0]])).astype(dtype)
    Gs = {s: rng.standard_normal((B, width[s])).astype(dtype) for s in mod.STATES}
    return params, x, state0, G, Gs


def loss(mod, params, x, state0, G, Gs, inputs=None, run=None):
    """L = sum(y * G) + sum_s sum(state_T[s] * Gs[s]); ``run``: forward's keywords (lengths,
    reverse)."""
    y, state_T, _ = mod.forward(params, x, state0, **(inputs or {}), **(run or {}))
    return float(np.sum(y * G) + sum(np.sum(state_T[s] * Gs[s]) for s in mod.STATES))


_loss = loss


def _fd_array(f, arr, eps=EPS):
    """Central differences of the scalar f(perturbed copy of arr) w.r.t. every entry of arr."""
    grad = np.zeros(arr.shape, dtype=np.float64)
    for idx in np.ndindex(arr.shape):
        plus, minus = arr.copy(), arr.copy()
        plus[idx] += eps
        minus[idx] -= eps
        grad[idx] = (f(plus) - f(minus)) / (2 * eps)
    return grad


def fd_gradients(mod, params, x, state0, G, Gs, eps=EPS, inputs=None, run=None):
    """Finite-difference gradients of ``loss`` w.r.t. every param, x and every state0 entry (and
    every other input in ``inputs``, returned as a fourth item when there are any)."""
    inputs = inputs or {}

    def loss(mod, params, x, state0, G, Gs, inputs):
        return _loss(mod, params, x, state0, G, Gs, inputs, run)

    grads = {
        k: _fd_array(lambda v, k=k: loss(mod, {**params, k: v}, x, state0, G, Gs, inputs),
                     params[k], eps)
        for k in mod.PARAMS
    }
    dx = _fd_array(lambda v: loss(mod, params, v, state0, G, Gs, inputs), x, eps)
    dstate0 = {
        s: _fd_array(lambda v, s=s: loss(mod, params, x, {**state0, s: v}, G, Gs, inputs),
                     state0[s], eps)
        for s in mod.STATES
    }
    if not inputs:
        return grads, dx, dstate0
    dinputs = {n: _fd_array(lambda v, n=n: loss(mod, params, x, state0, G, Gs,
                                                {**inputs, n: v}), inputs[n], eps)
               for n in inputs}
    return grads, dx, dstate0, dinputs


def max_rel_err(a, b):
    """|a - b|.max() / max(|a|.max(), |b|.max(), tiny)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size == 0 and b.size == 0:
        return 0.0
    return float(np.abs(a - b).max() / max(np.abs(a).max(), np.abs(b).max(), TINY))


def gradient_errors(mod, seed=0, run=None, eps=EPS, **sizes):
    """Backward vs finite differences: {label: (max relative error, max |fd gradient|)};
    ``sizes``: T, B, D, H for random_problem; ``run``: forward's keywords (lengths, reverse).
    Every other input is checked too (its name)."""
    inputs = {}
    params, x, state0, G, Gs = random_problem(mod, seed=seed, inputs=inputs, **sizes)
    y, state_T, cache = mod.forward(params, x, state0, **inputs, **(run or {}))
    grads, dx, dstate0, *dinputs = mod.backward(params, cache, G, Gs)
    assert len(dinputs) == (1 if inputs else 0)
    dinputs = dinputs[0] if inputs else {}
    assert set(dinputs) == set(inputs)
    assert set(grads) == set(params), f"grads keys {sorted(grads)} != params {sorted(params)}"
    assert set(dstate0) == set(mod.STATES)
    for k in params:
        assert grads[k].shape == params[k].shape, (k, grads[k].shape, params[k].shape)
    assert dx.shape == x.shape
    fd_grads, fd_dx, fd_dstate0, *fd_dinputs = fd_gradients(mod, params, x, state0, G, Gs,
                                                            eps=eps, inputs=inputs, run=run)
    out = {}
    for k in mod.PARAMS:
        out[f"params[{k!r}]"] = (max_rel_err(grads[k], fd_grads[k]), np.abs(fd_grads[k]).max())
    out["x"] = (max_rel_err(dx, fd_dx), np.abs(fd_dx).max())
    for n in inputs:
        out[n] = (max_rel_err(dinputs[n], fd_dinputs[0][n]), np.abs(fd_dinputs[0][n]).max())
    for s in mod.STATES:
        out[f"state0[{s!r}]"] = (max_rel_err(dstate0[s], fd_dstate0[s]),
                                 np.abs(fd_dstate0[s]).max())
    return out
