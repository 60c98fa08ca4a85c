"""env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench.py

(Those two variables halve NumPy's matmul speed on this machine; never change them in tests or CI.)
symrnn's generated modules against a naive NumPy reference, PyTorch, JAX and the BLAS's own peak.
One timing: forward + backward of loss = sum(y * G), G fixed and random (dy = G), float32, x
(T, B, D); calls repeated until they fill 30 ms, divided by their number. After a warm-up call
each, the implementations take turns in every round, 0.15 s apart (spinning BLAS/OpenMP threads
slow the next one otherwise); the table gives the median over the rounds (--repeats).
"""

import argparse
import datetime
import importlib
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import symrnn
import symrnn.interop
from symrnn.lower import lower


def optional(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


threadpoolctl, torch, jax, jnp, numba = map(optional, ("threadpoolctl", "torch", "jax", "jax.numpy",
                                                    "numba"))
torch_cell = optional("symrnn.torch_cell") if torch else None
if jax:
    jax.config.update("jax_enable_x64", True)  # for the float64 check; float32 stays float32

ROOT = Path(__file__).resolve().parent.parent
CELLS = ("lstm", "gru", "gru_torch", "lstm_peephole", "mgu", "rnn", "lstm_ln", "slstm", "lstmp",
         "gru_d")
CONFIGS = [(100, 32, 64, 128), (100, 64, 256, 512), (1000, 1, 8, 32), (10000, 1, 8, 32),
           (50, 128, 512, 1024)]  # (T, B, D, H)
SMALL = [CONFIGS[0], CONFIGS[2]]
BURST, PAUSE = 0.030, 0.15


def burst(fn):
    """Seconds per call of fn, over as many calls as fill BURST seconds."""
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < BURST or not calls:
        fn()
        calls += 1
    return elapsed / calls


def race(impls, repeats):
    """{name: median seconds per call}: a warm-up call each, then `repeats` round-robin rounds."""
    times = {name: [] for name in impls}
    for fn in impls.values():
        fn()
    for _ in range(repeats):
        for name, fn in impls.items():
            time.sleep(PAUSE)
            times[name].append(burst(fn))
    return {name: statistics.median(ts) for name, ts in times.items()}


# The naive reference: the seed's equations as course notes write them, batch in columns (x is
# (T, D, B), dy (T, H, B)), one np.dot per gate per step, weight gradients summed inside the loop.

def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def naive_lstm(p, x, dy):
    (T, _, B), H = x.shape, p["b_f"].shape[0]  # x: (T, D, B)
    a, c = np.zeros((H, B), x.dtype), np.zeros((H, B), x.dtype)
    y, caches = np.empty((T, H, B), x.dtype), []
    for t in range(T):
        concat = np.concatenate([a, x[t]])
        f = sigmoid(np.dot(p["W_f"], concat) + p["b_f"][:, None])
        u = sigmoid(np.dot(p["W_u"], concat) + p["b_u"][:, None])
        c_tilde = np.tanh(np.dot(p["W_c"], concat) + p["b_c"][:, None])
        o = sigmoid(np.dot(p["W_o"], concat) + p["b_o"][:, None])
        c_next = f * c + u * c_tilde
        caches.append((a, c, c_next, x[t], f, u, c_tilde, o))
        c, a = c_next, o * np.tanh(c_next)
        y[t] = a
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dx, da_next, dc_next = np.empty_like(x), np.zeros_like(a), np.zeros_like(c)
    for t in reversed(range(T)):
        a_prev, c_prev, c, xt, f, u, c_tilde, o = caches[t]
        da = dy[t] + da_next
        dc = dc_next + da * o * (1 - np.tanh(c) ** 2)
        dz = {"o": da * np.tanh(c) * o * (1 - o), "c": dc * u * (1 - c_tilde ** 2),
              "u": dc * c_tilde * u * (1 - u), "f": dc * c_prev * f * (1 - f)}
        concat, dconcat = np.concatenate([a_prev, xt]), 0
        for k, dz_k in dz.items():
            grads["W_" + k] += np.dot(dz_k, concat.T)
            grads["b_" + k] += np.sum(dz_k, axis=1)
            dconcat = dconcat + np.dot(p["W_" + k].T, dz_k)
        da_next, dc_next, dx[t] = dconcat[:H], dc * f, dconcat[H:]
    return y, grads, dx, {"a": da_next, "c": dc_next}


def naive_gru(p, x, dy):
    (T, _, B), H = x.shape, p["b_u"].shape[0]  # x: (T, D, B)
    a = np.zeros((H, B), x.dtype)
    y, caches = np.empty((T, H, B), x.dtype), []
    for t in range(T):
        concat = np.concatenate([a, x[t]])
        u = sigmoid(np.dot(p["W_u"], concat) + p["b_u"][:, None])
        r = sigmoid(np.dot(p["W_r"], concat) + p["b_r"][:, None])
        c_tilde = np.tanh(np.dot(p["W_c"], np.concatenate([r * a, x[t]])) + p["b_c"][:, None])
        caches.append((a, x[t], u, r, c_tilde))
        a = y[t] = u * c_tilde + (1 - u) * a
    grads = {name: np.zeros_like(value) for name, value in p.items()}
    dx, da_next = np.empty_like(x), np.zeros_like(a)
    for t in reversed(range(T)):
        a_prev, xt, u, r, c_tilde = caches[t]
        da = dy[t] + da_next
        dz_c = da * u * (1 - c_tilde ** 2)
        dz_u = da * (c_tilde - a_prev) * u * (1 - u)
        dconcat_r = np.dot(p["W_c"].T, dz_c)
        dz_r = dconcat_r[:H] * a_prev * r * (1 - r)
        concat, concat_r = np.concatenate([a_prev, xt]), np.concatenate([r * a_prev, xt])
        for k, dz_k, v in (("c", dz_c, concat_r), ("u", dz_u, concat), ("r", dz_r, concat)):
            grads["W_" + k] += np.dot(dz_k, v.T)
            grads["b_" + k] += np.sum(dz_k, axis=1)
        dconcat = np.dot(p["W_u"].T, dz_u) + np.dot(p["W_r"].T, dz_r)
        da_next = da * (1 - u) + dconcat_r[:H] * r + dconcat[:H]
        dx[t] = dconcat_r[H:] + dconcat[H:]
    return y, grads, dx, {"a": da_next}


NAIVE = {"lstm": naive_lstm, "gru": naive_gru}


class PeepholeLSTM(torch.nn.Module if torch else object):
    """lstm_peephole as a researcher writes a new cell in PyTorch: one step, looped in Python."""

    def __init__(self, p):
        super().__init__()
        param = lambda v: torch.nn.Parameter(torch.from_numpy(np.array(v)))  # noqa: E731
        self.W = param(np.concatenate([p[f"W_{k}"] for k in "fuco"]))  # (4H, H + D)
        self.b = param(np.concatenate([p[f"b_{k}"] for k in "fuco"]))
        self.p_f, self.p_u, self.p_o = param(p["p_f"]), param(p["p_u"]), param(p["p_o"])

    def forward(self, x):
        H, ys = self.p_f.shape[0], []
        a = c = x.new_zeros(x.shape[1], H)
        for x_t in x:
            z = torch.nn.functional.linear(torch.cat([a, x_t], 1), self.W, self.b)
            z_f, z_u, z_c, z_o = z.split(H, 1)
            f, u = torch.sigmoid(z_f + self.p_f * c), torch.sigmoid(z_u + self.p_u * c)
            c = f * c + u * torch.tanh(z_c)
            a = torch.sigmoid(z_o + self.p_o * c) * torch.tanh(c)
            ys.append(a)
        return torch.stack(ys)


class LayerNormLSTM(torch.nn.Module if torch else object):
    """lstm_ln as a researcher writes it in PyTorch: one fused matmul for the four gates, a
    torch.nn.LayerNorm per gate and one on the cell state, one step looped in Python."""

    def __init__(self, p):
        super().__init__()
        param = lambda v: torch.nn.Parameter(torch.from_numpy(np.array(v)))  # noqa: E731
        self.W = param(np.concatenate([p[f"W_{k}"] for k in "fuco"]))  # (4H, H + D), no bias
        H, dtype = p["g_f"].shape[0], self.W.dtype
        self.norms = torch.nn.ModuleList(torch.nn.LayerNorm(H, eps=1e-5, dtype=dtype)
                                         for _ in "fucos")
        for k, norm in zip("fucos", self.norms, strict=True):
            norm.weight, norm.bias = param(p[f"g_{k}"]), param(p[f"b_{k}"])

    def forward(self, x):
        (n_f, n_u, n_c, n_o, n_s), H, ys = self.norms, self.W.shape[0] // 4, []
        a = c = x.new_zeros(x.shape[1], H)
        for x_t in x:
            z_f, z_u, z_c, z_o = torch.nn.functional.linear(torch.cat([a, x_t], 1),
                                                            self.W).split(H, 1)
            c = torch.sigmoid(n_f(z_f)) * c + torch.sigmoid(n_u(z_u)) * torch.tanh(n_c(z_c))
            a = torch.sigmoid(n_o(z_o)) * torch.tanh(n_s(c))
            ys.append(a)
        return torch.stack(ys)


def problem(mod, T, B, D, H, dtype, rng, seed=0):
    """(params, x, inputs, G) for a module: a size beyond D and H (lstmp's P) is H // 2, as
    speech models project; another input of size 1 (gru_d's dt) exponential time gaps."""
    named = {"D": D, "H": H}
    sizes = {n: max(H // 2, 1) for n in set(getattr(mod, "SIZES", {}).values()) - {"D", "H", 1}}
    named.update(sizes)
    params = mod.init_params(D, H, rng=seed, dtype=dtype, **sizes)
    x = rng.standard_normal((T, B, D)).astype(dtype)
    widths = {k: named.get(v, v) for k, v in getattr(mod, "SIZES", {}).items()}
    inputs = {k: rng.exponential(1.0, (T, B, widths[k])).astype(dtype)
              for k in getattr(mod, "INPUTS", ("x",))[1:]}
    G = rng.standard_normal((T, B, widths.get(mod.STATES[0], H))).astype(dtype)
    return params, x, inputs, G


def torch_run(module, x, G, inputs=None):
    xt, gt = torch.from_numpy(x).requires_grad_(), torch.from_numpy(G)
    others = {k: torch.from_numpy(v) for k, v in (inputs or {}).items()}

    def run():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        y = module(xt, **others)
        y = y[0] if isinstance(y, tuple) else y  # nn.LSTM / nn.GRU return (y, state)
        y.backward(gt)
        return y.detach().numpy(), xt.grad.numpy()
    return run


def jax_lstm_run(p, x, G):
    """jit(value_and_grad) over lax.scan; the first call (the warm-up) compiles."""
    Wb = (jnp.concatenate([p[f"W_{k}"] for k in "fuco"]),
          jnp.concatenate([p[f"b_{k}"] for k in "fuco"]))
    H, Gj, xj = p["b_f"].shape[0], jnp.asarray(G), jnp.asarray(x)

    def loss(Wb, x):
        def step(state, x_t):
            z = jnp.concatenate([state[0], x_t], 1) @ Wb[0].T + Wb[1]
            z_f, z_u, z_c, z_o = jnp.split(z, 4, axis=1)
            c = jax.nn.sigmoid(z_f) * state[1] + jax.nn.sigmoid(z_u) * jnp.tanh(z_c)
            a = jax.nn.sigmoid(z_o) * jnp.tanh(c)
            return (a, c), a
        zeros = jnp.zeros((x.shape[1], H), x.dtype)
        y = jax.lax.scan(step, (zeros, zeros), x)[1]
        return jnp.sum(y * Gj), y

    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))

    def run():
        (_, y), (_, dx) = jax.block_until_ready(fn(Wb, xj))
        return y, dx
    return run


def gemm_floor(plan, params, T, B, sizes, dtype=np.float32):
    """A run making only the matrix products the cell's module makes, of the same shapes, through
    NumPy's BLAS into preallocated arrays, and nothing else: per product of the Plan, the input
    GEMM before the loop or one per step, one per step back, and the weight (and x) gradients
    after the loop. A step's product may also be formed transposed (weights on the left, a
    gate-major (n, B) result; OpenBLAS is up to 25 % faster so at small B): for each direction
    the run takes whichever way is faster here. No code on NumPy's BLAS is faster than this."""
    rng = np.random.default_rng(0)
    new = lambda *shape: rng.standard_normal(shape, dtype=dtype)  # noqa: E731

    def widths(p):  # (rows of the stacked blocks, size of the vector they read)
        return (sum(params[part.weight].shape[0] for part in p.parts),
                sizes[p.size] if p.size in sizes else int(p.size))
    gemms = []  # (a, b, out): out = a @ b, once
    ways = {"forward": ([], []), "backward": ([], [])}  # per direction: batch-major, gate-major
    for p in plan.x_products:  # Z = x W^T for all steps; dW = dZ^T x; dx = dZ W
        n, D = widths(p)
        X, dZ, W = new(T * B, D), new(T * B, n), new(D, n)
        gemms += [(X, W, new(T * B, n)), (dZ.T, X, new(n, D)), (dZ, W.T.copy(), new(T * B, D))]
    for p in plan.products:  # Z += a_prev W^T at every step; da_prev = dZ W at every step back
        n, H = widths(p)
        A, dZ, W = new(T, B, H), new(T, B, n), new(H, n)
        ways["forward"][0].append((A, W, new(B, n)))  # (B, H) @ (H, n)
        ways["forward"][1].append((W.T.copy(), new(T, H, B), new(n, B)))  # (n, H) @ (H, B)
        ways["backward"][0].append((dZ, W.T.copy(), new(B, H)))  # (B, n) @ (n, H)
        ways["backward"][1].append((W.copy(), new(T, n, B), new(H, B)))  # (H, n) @ (n, B)
        gemms.append((dZ.reshape(T * B, n).T, A.reshape(T * B, H), new(n, H)))  # dW = dZ^T a

    def per_step(products):
        def run():
            for a, b, out in products:
                if a.ndim == 3:  # the step's operand on the left (batch-major)
                    for t in range(T):
                        np.dot(a[t], b, out=out)
                else:  # on the right (gate-major)
                    for t in range(T):
                        np.dot(a, b[t], out=out)
        return run

    fastest = [min((per_step(way) for way in pair),
                   key=lambda run: statistics.median(burst(run) for _ in range(5)))
               for pair in ways.values()]

    def run():
        for step in fastest:
            step()
        for a, b, out in gemms:
            np.dot(a, b, out=out)
    return run


def implementations(cell, mod, params, x, G, compiled=None, plan=None, inputs=None):
    """{name: run}, each run computing forward + backward and returning (y, dx) as (T, B, ...).
    cell: the Cell; compiled: the cell's numba module (symrnn generate --backend numba), if
    numba is installed; plan: the cell's Plan, for the GEMM floor (a run that returns nothing:
    not checked); inputs: the cell's other inputs (gru_d's dt)."""
    workspace, compiled_workspace = {}, {}  # kept across calls: arrays reused, no page faults
    inputs = inputs or {}

    def run_symrnn():
        y, _, cache = mod.forward(params, x, workspace=workspace, **inputs)
        return y, mod.backward(params, cache, G, workspace=workspace)[1]

    def run_new_arrays():
        y, _, cache = mod.forward(params, x, **inputs)
        return y, mod.backward(params, cache, G)[1]
    impls = {"symrnn": run_symrnn, "new arrays": run_new_arrays}
    if compiled is not None:
        def run_numba():
            y, _, cache = compiled.forward(params, x, workspace=compiled_workspace, **inputs)
            return y, compiled.backward(params, cache, G, workspace=compiled_workspace)[1]
        impls["numba"] = run_numba

        def run_numba_one_block():  # the batch not cut: every per-step product on all threads
            saved, compiled._MIN_BLOCK = compiled._MIN_BLOCK, sys.maxsize
            try:
                return run_numba()
            finally:
                compiled._MIN_BLOCK = saved
        impls["numba 1 block"] = run_numba_one_block

        def one_thread(run):  # as under threadpoolctl's limit, without its cost per call
            def run_on_one_thread():
                threads = compiled._blas_threads()
                compiled._set_blas_threads(1)
                try:
                    return run()
                finally:
                    compiled._set_blas_threads(threads)
            return run_on_one_thread
        impls["numba 1 thread"] = one_thread(run_numba)
        if plan is not None and x.shape[1] > 1:  # the floor of the batch cut in two blocks
            half = x.shape[1] // 2
            x_half, G_half = x[:, :half].copy(), G[:, :half].copy()
            inputs_half = {k: v[:, :half].copy() for k, v in inputs.items()}
            half_workspace = {}

            def run_half_batch():  # returns nothing: not checked
                _, _, cache = compiled.forward(params, x_half, workspace=half_workspace,
                                               **inputs_half)
                compiled.backward(params, cache, G_half, workspace=half_workspace)
            impls["numba B/2 1 thread"] = one_thread(run_half_batch)
    name = cell.name
    if name in NAIVE:
        xc, Gc = (np.ascontiguousarray(v.transpose(0, 2, 1)) for v in (x, G))
        impls["naive"] = lambda: [v.transpose(0, 2, 1) for v in NAIVE[name](params, xc, Gc)[::2]]
    if plan is not None:
        sizes = dict(zip(("D", "H"), (x.shape[-1], params[plan.slots[0].weight].shape[0]),
                         strict=True))
        sizes.update(cell.sizes_of(params))
        impls["GEMMs"] = gemm_floor(plan, params, *x.shape[:2], sizes, x.dtype)
    if torch and name in ("lstm", "gru_torch", "lstmp"):
        impls["torch"] = torch_run(symrnn.interop.to_torch(name, params), x, G)
    elif torch and name == "lstm_peephole":
        impls["torch"] = torch_run(PeepholeLSTM(params), x, G)
    elif torch:  # a cell PyTorch has no module for: its step printed as PyTorch code, looped
        impls["torch"] = torch_run(torch_cell.CellLoop(cell, params), x, G, inputs)
    if torch and name == "lstm_ln":  # and as written by hand, with torch.nn.LayerNorm
        impls["torch LN"] = torch_run(LayerNormLSTM(params), x, G)
    if jax and name == "lstm":
        impls["jax"] = jax_lstm_run(params, x, G)
    return impls


def check(cells, modules, compiled):
    """Every other implementation against symrnn once, in float64 at small sizes, to 1e-8.
    cells: {name: Cell}."""
    rng, (T, B, D, H), done = np.random.default_rng(1), (5, 3, 4, 6), []
    close = lambda a, b, what: np.testing.assert_allclose(a, b, 1e-8, 1e-8, err_msg=what)  # noqa: E731
    for cell in cells:
        params, x, inputs, G = problem(modules[cell], T, B, D, H, np.float64, rng, seed=2)
        y, _, cache = modules[cell].forward(params, x, **inputs)
        grads, dx, dstate0, *_ = modules[cell].backward(params, cache, G)
        impls = implementations(cells[cell], modules[cell], params, x, G, compiled.get(cell),
                                inputs=inputs)
        for name, run in list(impls.items())[1:]:
            y_ref, dx_ref = map(np.asarray, run())
            close(y_ref, y, f"{name} {cell}: y")
            close(dx_ref, dx, f"{name} {cell}: dx")
            done.append(f"{name} {cell}")
        if cell in NAIVE:  # and every gradient of the naive reference
            _, g_ref, _, d0_ref = NAIVE[cell](params, x.transpose(0, 2, 1), G.transpose(0, 2, 1))
            for k in grads:
                close(g_ref[k], grads[k], f"naive {cell}: {k}")
            for s in dstate0:
                close(d0_ref[s].T, dstate0[s], f"naive {cell}: dstate0[{s!r}]")
    return done


_FIRST_USE = """
import sys, time, numpy as np, symrnn
start = time.perf_counter()
m = symrnn.load(sys.argv[1], "numba")
extra = set(getattr(m, "SIZES", {}).values()) - {"D", "H", 1}
named = {"D": 3, "H": 3, 1: 1, **{n: 2 for n in extra}}
p = m.init_params(3, 3, **{n: v for n, v in named.items() if n not in ("D", "H", 1)})
widths = {k: named[v] for k, v in getattr(m, "SIZES", {}).items()}
inputs = {k: np.ones((2, 1, widths[k])) for k in getattr(m, "INPUTS", ("x",))[1:]}
y, _, cache = m.forward(p, np.ones((2, 1, 3)), **inputs)
m.backward(p, cache, np.ones_like(y))
print(time.perf_counter() - start)
"""


def numba_load_times(cell):
    """(s to generate, compile and run the numba module the first time, s for the same in a new
    process that finds numba's cache), each in a fresh process with an empty cache directory."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "SYMRNN_CACHE": cache}
        return tuple(float(subprocess.run([sys.executable, "-c", _FIRST_USE, cell], env=env,
                                          check=True, capture_output=True, text=True).stdout)
                     for _ in range(2))


def peak_gflops(repeats, n=2048):
    a, b = np.random.default_rng(0).standard_normal((2, n, n), dtype=np.float32)
    a @ b
    return 2 * n ** 3 / statistics.median(burst(lambda: a @ b) for _ in range(repeats)) / 1e9


_IMPORT = """
import os, time, numpy
start = time.perf_counter()
import generated.lstm as m
assert m.__file__.startswith(os.getcwd())  # the fresh ./generated, not another one
print(time.perf_counter() - start)
"""


def cli_timings(rounds=15):
    """(ms for `symrnn generate --all`, median of 3; ms for `import generated.lstm` in a process
    that has imported numpy, median of `rounds` new processes, its .pyc written beforehand)."""
    def run(*argv, cwd):
        start = time.perf_counter()
        out = subprocess.run([sys.executable, *argv], cwd=cwd, check=True, capture_output=True,
                             text=True).stdout
        return time.perf_counter() - start, out
    with tempfile.TemporaryDirectory() as tmp:
        gen = []
        for _ in range(3):
            shutil.rmtree(Path(tmp) / "generated", ignore_errors=True)
            gen.append(run("-m", "symrnn", "generate", "--all", cwd=tmp)[0])
        run("-c", _IMPORT, cwd=tmp)  # writes the .pyc
        imports = [float(run("-c", _IMPORT, cwd=tmp)[1]) for _ in range(rounds)]
    return 1e3 * statistics.median(gen), 1e3 * statistics.median(imports)


def blas():
    """(NumPy's BLAS as threadpoolctl reports it, its thread count)."""
    pools = [p for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"] \
        if threadpoolctl else []
    pool = next((p for p in pools if "numpy" in p["filepath"]), pools[0] if pools else None)
    if pool is None:
        return ("unknown: threadpoolctl reports no BLAS" if threadpoolctl else "unknown: "
                "threadpoolctl is missing (pip install threadpoolctl)"), os.cpu_count()
    keys = ("internal_api", "version", "architecture", "num_threads")
    return ", ".join(f"{k}={pool.get(k)}" for k in keys), pool["num_threads"]


def busy(seconds=0.5):
    """The fraction of the CPUs that other processes kept busy over `seconds` (/proc/stat)."""
    def ticks():  # (all, idle + iowait) on the first line of /proc/stat
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(values), values[3] + values[4]
    try:
        (all0, idle0), _, (all1, idle1) = ticks(), time.sleep(seconds), ticks()
    except OSError:  # not Linux
        return float("nan")
    return 1 - (idle1 - idle0) / max(all1 - all0, 1)


def markdown_table(rows):
    ln = any("torch LN ms" in row for row in rows)  # a column only when a row has it (lstm_ln)
    cols = ["cell", "config (T, B, D, H)", "symrnn ms", *(["numba ms"] if numba else []),
            "new arrays ms", "naive ms", "torch ms", *(["torch LN ms"] if ln else []),
            *(["jax ms"] if jax else []), "GEMMs ms",
            "new arrays/symrnn", "torch/symrnn", *(["torch LN/symrnn"] if ln else []),
            "naive/symrnn",
            *(["symrnn/numba", "torch/numba", *(["torch LN/numba"] if ln else []), "naive/numba"]
              if numba else []), "torch/GEMMs", *(["torch LN/GEMMs"] if ln else []),
            "GEMMs/symrnn", *(["GEMMs/numba"] if numba else []),
            *(["numba 1 block/numba", "numba 1 thread/numba", "numba B/2 1 thread/numba"]
              if numba else []), "GFLOP/s", "% peak"]
    cells = [[row.get(c, "—") for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    line = lambda vs: "| " + " | ".join(map(str.ljust, vs, widths)) + " |"  # noqa: E731
    return "\n".join([line(cols), line(["-" * w for w in widths]), *map(line, cells)])


def config(text):
    """A --configs value: small, all, or one configuration T,B,D,H (four positive integers)."""
    if text in ("small", "all"):
        return text
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected small, all or T,B,D,H (e.g. 100,32,64,128), "
                                         f"got {text!r}")
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", nargs="+", default=list(CELLS),
                        help="built-in names or cell files (benchmarks/cells/coupled.py)")
    parser.add_argument("--configs", nargs="+", type=config, default=["all"],
                        metavar="small|all|T,B,D,H",
                        help="small: (100, 32, 64, 128) and (1000, 1, 8, 32); all (default): "
                             "the five; or configurations of your own, e.g. 100,64,256,512")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results.md")
    args = parser.parse_args(argv)
    configs = []  # (T, B, D, H), in the order given, each once
    for c in args.configs:
        for cfg in {"small": SMALL, "all": CONFIGS}.get(c, [c]) if isinstance(c, str) else [c]:
            configs += [cfg] if cfg not in configs else []
    argv = sys.argv[1:] if argv is None else argv
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"warning: {var} is set; it slows NumPy's matmul (run with env -u {var})")
    kernel, threads = blas()
    if torch:
        torch.set_num_threads(threads)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((ln.split(":")[1].strip() for ln in cpuinfo.splitlines() if "model name" in ln), "?")
    info = {"date": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "
                       + shlex.join(["python", "benchmarks/bench.py", *argv]),
            "CPU": f"{cpu}, {os.cpu_count()} logical CPUs", "threads": threads, "BLAS": kernel,
            "versions": f"symrnn {symrnn.__version__}, NumPy {np.__version__}, "
                        f"torch {torch.__version__ if torch else 'not installed'}, "
                        f"jax {jax.__version__ if jax else 'not installed (skipped)'}, "
                        f"numba {numba.__version__ if numba else 'not installed (skipped)'}",
            "CPU busy before the start": f"{(cpu_busy := busy()):.0%}"}
    for key, value in info.items():
        print(f"{key}: {value}")
    if cpu_busy > 0.05:
        print("warning: other processes are using the CPU; the timings will be noisy")

    peak = peak_gflops(args.repeats)  # first: nothing else has run, no other thread pool spins
    print(f"peak: {peak:.1f} GFLOP/s")
    specs = {}  # cell name -> what names it (a built-in's name, or an absolute cell file)
    for spec in args.cells:
        path = spec.partition(".py")[0] + ".py" if ".py" in spec else None
        specs[symrnn.get_cell(spec).name] = str(Path(spec).resolve()) if path else spec
    cells = {name: symrnn.get_cell(spec) for name, spec in specs.items()}
    modules = {name: symrnn.load(cell) for name, cell in cells.items()}  # as generated now
    plans = {name: lower(symrnn.derive(cell)) for name, cell in cells.items()}
    compiled, compile_notes = {}, []
    if numba:
        for cell, spec in specs.items():
            first, cached = numba_load_times(spec)
            compile_notes.append(f"{cell} {first:.1f} s / {cached:.2f} s")
        compiled = {name: symrnn.load(cell, "numba") for name, cell in cells.items()}
        for cell in cells:  # compiled for float32 (or loaded) before any timing
            params, x, inputs, _ = problem(compiled[cell], 2, 1, 2, 3, np.float32,
                                           np.random.default_rng(0))
            compiled[cell].forward(params, x, **inputs)
    print("agree with symrnn (float64, 1e-8):", ", ".join(check(cells, modules, compiled)))
    rows, rng = [], np.random.default_rng(0)
    for cell in cells:
        for T, B, D, H in configs:
            params, x, inputs, G = problem(modules[cell], T, B, D, H, np.float32, rng)
            impls = implementations(cells[cell], modules[cell], params, x, G,
                                    compiled.get(cell), plans[cell], inputs)
            ms = {k: 1e3 * s for k, s in race(impls, args.repeats).items()}
            flops = 6 * T * B * sum(v.size for v in params.values() if v.ndim == 2)
            gflops = flops / ms["symrnn"] / 1e6
            row = {"cell": cell, "config (T, B, D, H)": f"({T}, {B}, {D}, {H})",
                   "GFLOP/s": f"{gflops:.1f}", "% peak": f"{100 * gflops / peak:.0f}%"}
            row.update({f"{k} ms": f"{v:.3g}" for k, v in ms.items()})
            row.update({f"{k}/symrnn": f"{ms[k] / ms['symrnn']:.2f}"
                        for k in ("new arrays", "naive", "torch", "torch LN") if k in ms})
            row.update({f"{k}/numba": f"{ms[k] / ms['numba']:.2f}"
                        for k in ("symrnn", "naive", "torch", "torch LN", "numba 1 block",
                                  "numba 1 thread", "numba B/2 1 thread")
                        if k in ms and "numba" in ms})
            row.update({f"{k}/GEMMs": f"{ms[k] / ms['GEMMs']:.2f}" for k in ("torch", "torch LN")
                        if k in ms})
            row.update({f"GEMMs/{k}": f"{ms['GEMMs'] / ms[k]:.0%}" for k in ("symrnn", "numba")
                        if k in ms})
            rows.append(row)
            print(", ".join(f"{k} {v}" for k, v in row.items()), flush=True)
    gen_ms, import_ms = cli_timings()
    notes = [f"peak: {peak:.1f} GFLOP/s (NumPy float32 2048x2048 @ 2048x2048, median)",
             f"`symrnn generate --all`: {gen_ms:.0f} ms (median of 3); "
             f"`import generated.lstm`: {import_ms:.1f} ms (after `import numpy`, median)"]
    if compile_notes:
        notes.append("numba module, first use (compiles, float64) / first use in a new process "
                     "(loads numba's cache): " + ", ".join(compile_notes))
    table = markdown_table(rows)
    print("\n" + table + "\n\n" + "\n".join(notes))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# symrnn benchmark\n\n" + "".join(f"- {k}: {v}\n" for k, v in info.items())
                        + "".join(f"- {n}\n" for n in notes) + "\n" + table + "\n\n" + LEGEND)
    print(f"wrote {args.out}")


LEGEND = """\
ms per forward + backward (float32), median over rounds. symrnn: the generated module with a
workspace kept across calls; new arrays: the same module allocating its arrays on every call.
numba: the --backend numba module (compiled time loops; float32 tanh approximated, see
symrnn/approx.py), also with a workspace. numba 1 block: the same with the batch not cut into
blocks (one time loop, its per-step products on all BLAS threads); numba 1 thread: the same under
one BLAS thread (as under threadpoolctl's limit; so also one block); numba B/2 1 thread: one
thread on half the batch, the time of two blocks run at once at no cost of their own (the floor of
cutting the batch).
naive: course-notes NumPy (a matmul per gate per step, dW summed in the loop). torch: nn.LSTM,
nn.GRU (gru_torch), nn.LSTM(proj_size=P) (lstmp, P = H/2, as every size beyond D and H here;
gru_d's gaps dt are exponential), a Python-loop nn.Module (lstm_peephole), and for any other
cell its step printed as PyTorch code by symrnn.torch_cell, looped in Python. torch LN (lstm_ln):
a Python-loop nn.Module by hand, one fused matmul and a torch.nn.LayerNorm per gate and on the
cell state.
Ratio > 1: symrnn is faster.
GEMMs: only the matrix products the module makes (same shapes, NumPy's BLAS, preallocated
outputs; a step's products batch-major as the module makes them or gate-major, weights on the
left, whichever is faster), called from Python, and nothing else: no NumPy code is faster.
torch/GEMMs: the best torch/x ratio such code could reach. GEMMs/symrnn, GEMMs/numba: the share
of each module's time its products would take at that speed (above 100 % for numba at B = 1,
where it calls the BLAS without Python's per-call cost).
GFLOP/s: symrnn's GEMM FLOPs, 6·T·B·Σ|W| (forward, dW, input/state gradients), per second;
% peak: of the measured matmul peak.
"""

if __name__ == "__main__":
    main()
