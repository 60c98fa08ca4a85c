"""The adding problem (Hochreiter & Schmidhuber 1997; Le, Jaitly & Hinton 2015).

Each sequence is T pairs (value, marker): values uniform in [0, 1], markers 0 except at exactly
two steps, one in the first half (steps 0 .. T//2 - 1) and one in the second; the target is the
sum of the two marked values. Always predicting 1 (the target's mean) scores an MSE of
Var(u1 + u2) = 2/12 ≈ 0.167.
"""

import numpy as np

BASELINE_PREDICTION = 1.0


def batch(rng, size, seq_len, dtype=np.float32):
    """``size`` fresh sequences: x (seq_len, size, 2), time-major, and the targets (size,)."""
    if seq_len < 2:
        raise ValueError(f"seq_len: expected at least 2, got {seq_len}")
    half = seq_len // 2
    values = rng.uniform(0.0, 1.0, (seq_len, size))
    first = rng.integers(0, half, size)
    second = rng.integers(half, seq_len, size)
    columns = np.arange(size)
    markers = np.zeros((seq_len, size))
    markers[first, columns] = 1.0
    markers[second, columns] = 1.0
    x = np.stack([values, markers], axis=-1).astype(dtype)
    # the sum of the values as they are given to the network (rounded to dtype)
    target = x[first, columns, 0].astype(np.float64) + x[second, columns, 0]
    return x, target.astype(dtype)


def baseline_mse(target):
    """The MSE of always predicting 1."""
    return float(np.mean((np.asarray(target, dtype=np.float64) - BASELINE_PREDICTION) ** 2))
