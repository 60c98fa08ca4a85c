"""Training a generated module on the adding problem (``symrnn train adding``).

The network: the cell (its generated module's forward and backward), then a linear readout of
its last output (``symrnn.readout``), under the MSE loss; Adam with clipping of the global
gradient norm (``symrnn.optim``). Every step draws a fresh batch; a fixed test set (the same for
every cell and seed: its own random stream) is scored every ``check_every`` steps, and training
stops once its MSE is below ``target``.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from . import adding, readout
from .forget_bias import initial_params
from .optim import Adam, clip_by_global_norm

TEST_SET_SEED = 20150402  # any fixed number: the test set is the same for every cell and seed
EVAL_BATCH = 250
TARGET = 0.01  # training stops once the test MSE is below it
CHECK_EVERY = 100


class Diverged(Exception):
    """The training loss became NaN or infinite."""


@dataclass
class Result:
    cell: str
    seq_len: int
    seed: int
    baseline: float  # test MSE of always predicting 1
    train: list = field(default_factory=list)  # the training batch's MSE, every step
    test: list = field(default_factory=list)  # (step, test MSE) at every check
    seconds: float = 0.0  # wall time of the training loop, checks included
    has_forget_bias: bool = False

    @property
    def steps(self):
        return len(self.train)

    @property
    def test_mse(self):
        return self.test[-1][1]


def test_set(seq_len, size=1000, dtype=np.float32):
    """The fixed test sequences for sequence length ``seq_len``: (x, target)."""
    return adding.batch(np.random.default_rng(TEST_SET_SEED), size, seq_len, dtype)


def evaluate(module, params, read, x, target, workspace):
    """The MSE of the network on (x, target), in batches of EVAL_BATCH sequences."""
    errors = []
    for i in range(0, x.shape[1], EVAL_BATCH):
        y, _, _ = module.forward(params, x[:, i:i + EVAL_BATCH], workspace=workspace)
        errors.append(readout.predict(read, y[-1]).astype(np.float64) - target[i:i + EVAL_BATCH])
    return float(np.mean(np.square(np.concatenate(errors))))


def loss_and_grads(module, params, read, x, target, dy, workspace=None):
    """The MSE of the network on one batch and its gradients: (loss, cell grads, readout grads).
    ``dy``: a (T, B, H) buffer of zeros, reused (only its last step is written)."""
    y, _, cache = module.forward(params, x, workspace=workspace)
    loss, read_grads, dy[-1] = readout.mse_and_grads(read, y[-1], target)
    cell_grads, _, _ = module.backward(params, cache, dy, workspace=workspace)
    return loss, cell_grads, read_grads


def train_adding(module, *, seq_len=200, hidden=64, batch=64, steps=4000, lr=3e-3, clip=1.0,
                 seed=0, dtype=np.float32, forget_bias=1.0, test_size=1000, check_every=CHECK_EVERY,
                 target=TARGET, on_step=None, on_check=None):
    """Train and return a Result. ``on_step(step, loss)`` after every step,
    ``on_check(step, train_mse, test_mse)`` after every check (train_mse: the mean of the batch
    losses since the previous check)."""
    rng = np.random.default_rng(seed)
    params, has_forget_bias = initial_params(module, 2, hidden, rng=rng, dtype=dtype,
                                             forget_bias=forget_bias)
    read = readout.init(hidden, rng, dtype)
    x_test, y_test = test_set(seq_len, test_size, dtype)
    result = Result(module.CELL, seq_len, seed, adding.baseline_mse(y_test),
                    has_forget_bias=has_forget_bias)
    weights = {**{("cell", k): v for k, v in params.items()},
               **{("readout", k): v for k, v in read.items()}}  # the same arrays, updated in place
    adam = Adam(weights, lr=lr)
    dy = np.zeros((seq_len, batch, hidden), dtype=dtype)  # only the last step is ever non-zero
    workspace, test_workspace = {}, {}

    start = time.perf_counter()
    for step in range(1, steps + 1):
        x, y_true = adding.batch(rng, batch, seq_len, dtype)
        loss, cell_grads, read_grads = loss_and_grads(module, params, read, x, y_true, dy,
                                                      workspace)
        if not np.isfinite(loss):
            raise Diverged(f"the training loss is {loss} at step {step}")
        grads = {**{("cell", k): v for k, v in cell_grads.items()},
                 **{("readout", k): v for k, v in read_grads.items()}}
        adam.step(weights, clip_by_global_norm(grads, clip)[0])
        result.train.append(loss)
        if on_step:
            on_step(step, loss)
        if step % check_every == 0 or step == steps:
            result.test.append((step, evaluate(module, params, read, x_test, y_test,
                                               test_workspace)))
            if on_check:
                on_check(step, float(np.mean(result.train[-check_every:])), result.test_mse)
            if result.test_mse < target:
                break
    result.seconds = time.perf_counter() - start
    return result
