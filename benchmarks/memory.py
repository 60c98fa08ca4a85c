"""Peak memory of forward + backward against the size of the cache it keeps (issue: within 1.3x).

    python benchmarks/memory.py [numpy|numba]

Runs the lstm module at (T, B, D, H) = (10000, 32, 64, 256), float32, in this process: the
growth of the peak resident set size over forward + backward, divided by the bytes of the cache
(every array in it but x, which is the caller's). dx (new, like the caller's x) is counted in the
growth.
"""

import resource
import sys

import numpy as np

import symrnn

T, B, D, H = 10000, 32, 64, 256


def main(backend="numpy"):
    module = symrnn.load("lstm", backend)
    params = module.init_params(D, H, rng=0, dtype=np.float32)
    x = np.random.default_rng(0).standard_normal((T, B, D), dtype=np.float32)
    dy = np.ones((T, B, H), np.float32)
    y, _, cache = module.forward(params, x[:2, :1])  # compiled (numba) before measuring
    module.backward(params, cache, dy[:2, :1])
    del y, cache
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    y, _, cache = module.forward(params, x)
    kept = sum(v.nbytes for k, v in cache.items() if k not in ("x", "workspace"))
    module.backward(params, cache, dy)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"lstm {backend} (T, B, D, H) = {(T, B, D, H)} float32: cache {kept / 2**20:.0f} MiB "
          f"({kept / (T * B * H * 4):.0f} vectors of H per step and sample, "
          f"{kept / T / 1e3:.0f} kB per step); peak grew by {(peak - before) / 2**20:.0f} MiB "
          f"= {(peak - before) / kept:.2f}x the cache")


if __name__ == "__main__":
    main(*sys.argv[1:])
