"""How far back the gradient of a loss read at the last step reaches (``symrnn vanish``).

The setup, for a generated module: parameters from its ``init_params`` (uniform in ±1/√H, as
PyTorch) with the forget bias added to ``b_f`` (``symrnn.forget_bias``); an input sequence x
drawn from the standard normal distribution, (T, B, D); the loss L = Σ_b w · y⟨T⟩_b with a fixed
standard-normal w of size H, so ∂L/∂y⟨t⟩ is zero for every t < T. The module's ``backward`` then
gives ∂L/∂x⟨t⟩ at every step.

Distance d counts steps back from the last one: d = 0 is x⟨T⟩, d = T - 1 is x⟨1⟩. The sequence is
run in segments (state passed from one to the next, the gradient with respect to it passed back),
which gives the same numbers as one call, a progress bar, and ∂L/∂a⟨T−d⟩ at the segment
boundaries, placed at the table's distances.
"""

from dataclasses import dataclass

import numpy as np

from .forget_bias import initial_params

DISTANCES = (1, 10, 100, 1000, 10000)
THRESHOLD = 1e-6
SEGMENT = 500  # steps per forward/backward call


@dataclass(frozen=True)
class Decay:
    """The gradient norms of one cell, by distance from the last step."""

    cell: str
    dx: np.ndarray  # (T,) float64: ‖∂L/∂x⟨T−d⟩‖ at index d
    state: str  # the output state, STATES[0]
    dstate: dict  # distance d -> ‖∂L/∂a⟨T−d⟩‖ (a: the output state), at 0 and DISTANCES < T
    has_forget_bias: bool

    @property
    def steps(self):
        return len(self.dx)

    def relative(self):
        """‖∂L/∂x⟨T−d⟩‖ / ‖∂L/∂x⟨T⟩‖ for d = 0 .. T-1."""
        return self.dx / self.dx[0]

    def relative_state(self):
        """{d: ‖∂L/∂a⟨T−d⟩‖ / ‖∂L/∂a⟨T⟩‖} at the table's distances."""
        return {d: v / self.dstate[0] for d, v in self.dstate.items() if d}

    def first_below(self, threshold=THRESHOLD):
        """The smallest distance at which the relative norm is below threshold, or None."""
        below = np.flatnonzero(self.relative() < threshold)
        return int(below[0]) if below.size else None


def table_distances(steps):
    """The distances of the table that exist in a sequence of ``steps`` inputs."""
    return [d for d in DISTANCES if d < steps]


def _segments(steps, length, cuts):
    """(start, stop) pairs covering range(steps), at most ``length`` long, cut at ``cuts``."""
    starts = sorted(set(range(0, steps, length)) | {c for c in cuts if 0 < c < steps})
    return list(zip(starts, starts[1:] + [steps], strict=True))


def measure(module, *, steps, hidden, input_size, batch=1, seed=0, forget_bias=1.0,
            dtype=np.float32, progress=None):
    """The Decay of one generated module; ``progress(n)`` is called after every n steps run
    (2 * steps in all: forward, then backward)."""
    if steps < 2:
        raise ValueError(f"steps: expected at least 2, got {steps}")
    rng = np.random.default_rng(seed)
    params, has_forget_bias = initial_params(module, input_size, hidden, rng=rng, dtype=dtype,
                                             forget_bias=forget_bias)
    x = rng.standard_normal((steps, batch, input_size)).astype(dtype)
    w = rng.standard_normal(hidden).astype(dtype)
    segments = _segments(steps, SEGMENT, [steps - d for d in table_distances(steps)])
    output = module.STATES[0]

    caches, state = [], None
    for start, stop in segments:
        _, state, cache = module.forward(params, x[start:stop], state)
        caches.append(cache)
        if progress:
            progress(stop - start)

    dx_norm = np.empty(steps)
    dstate_norm = {0: float(np.linalg.norm(np.broadcast_to(w, (batch, hidden)), axis=None))}
    dstate = None
    for i in reversed(range(len(segments))):
        start, stop = segments[i]
        dy = None
        if stop == steps:
            dy = np.zeros((stop - start, batch, hidden), dtype=dtype)
            dy[-1] = w
        _, dx, dstate = module.backward(params, caches[i], dy, dstate)
        caches[i] = None  # memory: what is left is linear in T either way
        dx_norm[start:stop] = np.linalg.norm(dx.astype(np.float64).reshape(stop - start, -1),
                                             axis=1)
        if steps - start in DISTANCES:
            dstate_norm[steps - start] = float(np.linalg.norm(dstate[output].astype(np.float64)))
        if progress:
            progress(stop - start)
    return Decay(module.CELL, dx_norm[::-1].copy(), output, dstate_norm, has_forget_bias)


def format_table(decays, threshold=THRESHOLD):
    """The relative norms at the table's distances, one column per cell, as text lines."""
    steps = decays[0].steps
    width = max(10, *(len(d.cell) + 2 for d in decays))
    head = f"{'distance d':<16}" + "".join(f"{d.cell:>{width}}" for d in decays)

    def rows(values):
        return [f"{d:<16}" + "".join(f"{v[d]:>{width}.2e}" for v in values)
                for d in table_distances(steps)]

    first = [decay.first_below(threshold) for decay in decays]
    return [
        "‖∂L/∂x⟨T−d⟩‖ / ‖∂L/∂x⟨T⟩‖",
        head,
        *rows([decay.relative() for decay in decays]),
        f"{f'first d < {threshold:g}':<16}"
        + "".join(f"{'never' if f is None else f:>{width}}" for f in first),
        "",
        "‖∂L/∂a⟨T−d⟩‖ / ‖∂L/∂a⟨T⟩‖, a: the output state ("
        + ", ".join(sorted({decay.state for decay in decays})) + ")",
        head,
        *rows([decay.relative_state() for decay in decays]),
    ]


def series_rows(decays):
    """(distance, relative norm of each cell) for every distance 0 .. T-1: the CSV's rows."""
    relative = np.stack([decay.relative() for decay in decays], axis=1)
    return [(d, *relative[d]) for d in range(len(relative))]
