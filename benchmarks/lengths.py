"""env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/lengths.py [--out FILE]

What variable lengths cost (issue 15), float32 forward + backward, bench.py's method (medians
of interleaved rounds). For each module and configuration (T, B, D, H):

- ``full``: forward(params, x) as before lengths existed;
- ``all T``: forward(params, x, lengths=[T] * B): the lengths path with one run, its overhead;
- ``mixed``: lengths drawn uniformly from 1 .. T (about half the rows), and ``mixed/full`` next
  to ``rows``, the share of the padded batch's rows that run (sum L_b / (T B)): the time the
  padded steps would cost is what mixed/full exceeds rows by;
- ``reverse``: the mixed batch with reverse=True;
- PyTorch's nn.LSTM, the same ratio for its packed batch against its padded one.
"""

import argparse
import datetime
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import blas, busy, optional, race  # noqa: E402

import symrnn  # noqa: E402

torch = optional("torch")
CONFIGS = [(100, 32, 64, 128), (100, 64, 256, 512)]


def timings(mod, T, B, D, H, rng, repeats):
    params = mod.init_params(D, H, rng=0, dtype=np.float32)
    x = rng.standard_normal((T, B, D)).astype(np.float32)
    G = rng.standard_normal((T, B, H)).astype(np.float32)
    mixed = rng.integers(1, T + 1, B)

    def run(**kw):
        def call():
            y, _, cache = mod.forward(params, x, **kw)
            mod.backward(params, cache, G)
        return call

    impls = {"full": run(), "all T": run(lengths=np.full(B, T)), "mixed": run(lengths=mixed),
             "reverse": run(lengths=mixed, reverse=True)}
    if torch is not None:
        impls.update(torch_impls(T, B, D, H, x, G, mixed))
    times = race(impls, repeats)
    return times, mixed.sum() / (T * B)


def torch_impls(T, B, D, H, x, G, lengths):
    torch.manual_seed(0)
    lstm = torch.nn.LSTM(D, H)
    xt, gt = torch.from_numpy(x), torch.from_numpy(G)

    def padded():
        lstm.zero_grad(set_to_none=True)
        y, _ = lstm(xt)
        y.backward(gt)

    def packed():
        lstm.zero_grad(set_to_none=True)
        seq = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lengths),
                                                      enforce_sorted=False)
        y, _ = lstm(seq)
        y, _ = torch.nn.utils.rnn.pad_packed_sequence(y, total_length=T)
        y.backward(gt)

    return {"torch padded": padded, "torch packed": packed}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    backends = ["numpy"] + (["numba"] if optional("numba") else [])
    lines = [f"# Variable lengths: what they cost ({datetime.date.today()})", "",
             f"BLAS: {blas()[0]}; other processes kept {busy():.0%} of the CPUs busy", "",
             "| module | T, B, D, H | full ms | all T / full | mixed / full | rows | "
             "reverse / full | torch packed / padded |",
             "|---|---|---|---|---|---|---|---|"]
    for backend in backends:
        mod = symrnn.load("lstm", backend)
        for T, B, D, H in CONFIGS:
            times, rows = timings(mod, T, B, D, H, rng, args.repeats)
            full = times["full"]
            torch_ratio = (f"{times['torch packed'] / times['torch padded']:.2f}"
                           if "torch packed" in times else "-")
            lines.append(f"| lstm ({backend}) | {T}, {B}, {D}, {H} | {full * 1e3:.2f} | "
                         f"{times['all T'] / full:.2f} | {times['mixed'] / full:.2f} | "
                         f"{rows:.2f} | {times['reverse'] / full:.2f} | {torch_ratio} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
