"""Adam (Kingma & Ba 2015, as torch.optim.Adam) and gradient clipping by the global norm, in
NumPy, over dicts of arrays (any keys)."""

import math

import numpy as np


def global_norm(grads):
    """sqrt of the sum of the squares of every entry of every gradient, in float64."""
    return math.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads.values()))


def clip_by_global_norm(grads, max_norm):
    """(grads scaled by max_norm / norm when the global norm exceeds max_norm, norm before
    clipping). ``max_norm`` None or 0: no clipping. A new dict; ``grads`` is left as it is."""
    norm = global_norm(grads)
    if not max_norm or norm <= max_norm:
        return dict(grads), norm
    scale = max_norm / norm
    return {k: g * g.dtype.type(scale) for k, g in grads.items()}, norm


class Adam:
    """m ← β1 m + (1-β1) g, v ← β2 v + (1-β2) g², p ← p - lr m̂ / (√v̂ + ε), with
    m̂ = m / (1-β1^t), v̂ = v / (1-β2^t); the parameters are updated in place."""

    def __init__(self, params, lr=3e-3, betas=(0.9, 0.999), eps=1e-8):
        self.lr, (self.beta1, self.beta2), self.eps = lr, betas, eps
        self.m = {k: np.zeros_like(p) for k, p in params.items()}
        self.v = {k: np.zeros_like(p) for k, p in params.items()}
        self.t = 0

    def step(self, params, grads):
        self.t += 1
        correction1 = 1 - self.beta1 ** self.t
        correction2 = 1 - self.beta2 ** self.t
        for k, p in params.items():
            g, m, v = grads[k], self.m[k], self.v[k]
            m *= self.beta1
            m += (1 - self.beta1) * g
            v *= self.beta2
            v += (1 - self.beta2) * g * g
            p -= self.lr * (m / correction1) / (np.sqrt(v / correction2) + self.eps)
