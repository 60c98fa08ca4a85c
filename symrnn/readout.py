"""A linear readout of the last output, pred = h · V + c, under the MSE loss; gradients by hand."""

import numpy as np


def init(hidden, rng, dtype=np.float32):
    """V (H,) and c (1,), uniform in ±1/√H, as torch.nn.Linear(H, 1)."""
    bound = 1.0 / np.sqrt(hidden)
    return {"V": rng.uniform(-bound, bound, hidden).astype(dtype),
            "c": rng.uniform(-bound, bound, 1).astype(dtype)}


def predict(readout, h):
    """h (B, H) -> predictions (B,)."""
    return h @ readout["V"] + readout["c"]


def mse_and_grads(readout, h, target):
    """L = mean_b (pred_b - target_b)²: (L as a float, {"V": ∂L/∂V, "c": ∂L/∂c}, ∂L/∂h (B, H))."""
    err = predict(readout, h) - target
    dpred = (2.0 / len(err)) * err
    grads = {"V": h.T @ dpred, "c": dpred.sum(keepdims=True)}
    return float(np.mean(np.square(err, dtype=np.float64))), grads, np.outer(dpred, readout["V"])
