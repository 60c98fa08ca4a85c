"""env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/torch_rnn.py [--cell lstm]

symrnn.torch.RNN (the generated network's forward and backward through one
torch.autograd.Function) against torch_cell.CellLoop (the cell's step printed as PyTorch code,
looped in Python, autograd) and torch.nn.LSTM, in a PyTorch training step: forward, then
backward of sum(y * G) (G fixed and random), float32, x (T, B, D) time-major. Timed as
benchmarks/bench.py times (its ``race``: a warm-up call each, then rounds in which the
implementations take turns, median over the rounds). The generated network called on NumPy
arrays directly (no torch) shows what the autograd wrapper costs.
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import blas, race  # noqa: E402

import symrnn  # noqa: E402
from symrnn.torch import RNN, default_backend  # noqa: E402
from symrnn.torch_cell import CellLoop  # noqa: E402


def step(module, x, G):
    """One forward + backward of module on x (gradients of x and the parameters)."""
    xt = torch.from_numpy(x).requires_grad_()
    gt = torch.from_numpy(G)

    def run():
        module.zero_grad(set_to_none=True)
        xt.grad = None
        y = module(xt)
        y = y[0] if isinstance(y, tuple) else y
        y.backward(gt)
    return run


def implementations(cell, T, B, D, H):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    torch.manual_seed(0)
    impls = {}
    backends = [default_backend()] + (["numpy"] if default_backend() != "numpy" else [])
    for backend in backends:
        rnn = RNN(cell, D, H, backend=backend)
        if not impls:
            G = rng.standard_normal((T, B, rnn.net.output_size)).astype(np.float32)
            net, params = rnn.net, rnn.numpy_params()

            def raw(net=net, params=params, G=G):
                y, _, cache = net.forward(params, x)
                net.backward(params, cache, G)
            impls[f"network, no torch ({backend})"] = raw
        impls[f"symrnn.torch.RNN ({backend})"] = step(rnn, x, G)
    params = {k.split(".", 1)[1]: v for k, v in rnn.numpy_params().items()}
    impls["torch_cell.CellLoop"] = step(CellLoop(symrnn.get_cell(cell), params), x, G)
    if cell == "lstm":
        impls["torch.nn.LSTM"] = step(torch.nn.LSTM(D, H), x, G)
    return impls


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cell", default="lstm")
    parser.add_argument("--config", default="100,32,64,128", metavar="T,B,D,H")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args(argv)
    T, B, D, H = map(int, args.config.split(","))
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if var in os.environ:
            print(f"warning: {var} is set; it slows NumPy's matmul (run with env -u {var})")
    kernel, threads = blas()
    torch.set_num_threads(threads)
    print(f"{args.cell}, (T, B, D, H) = {(T, B, D, H)}, float32, forward + backward; BLAS: "
          f"{kernel}, {threads} threads; torch {torch.__version__}")
    times = race(implementations(args.cell, T, B, D, H), args.repeats)
    ours = times[f"symrnn.torch.RNN ({default_backend()})"]
    width = max(map(len, times))
    print(f"{'':{width}}  {'ms':>8}  {'vs symrnn.torch.RNN':>20}")
    for name, seconds in times.items():
        print(f"{name:{width}}  {1e3 * seconds:8.2f}  {seconds / ours:19.2f}x")


if __name__ == "__main__":
    main()
