"""symrnn.train: the adding problem, learnt through the generated module."""

import numpy as np
import pytest
from conftest import load_module

from symrnn import adding, readout, train


@pytest.mark.parametrize("seed", range(5))
def test_lstm_learns_short_sequences_within_a_few_hundred_steps(seed):
    # measured (T = 30, H = 16, batch 32, lr 0.01): test MSE below 0.01 after 300-550 steps
    # for seeds 0-4, from 0.19 at the start
    result = train.train_adding(load_module("lstm"), seq_len=30, hidden=16, batch=32,
                                steps=800, lr=0.01, seed=seed, test_size=200, check_every=50)
    assert result.test[0][1] > 0.1  # it starts near the baseline
    assert result.test_mse < 0.02 < 0.15 * result.baseline, result.test
    assert result.steps < 800 and result.steps % 50 == 0  # stopped at a check


def test_result_records_every_step_and_check():
    checks = []
    result = train.train_adding(load_module("gru"), seq_len=12, hidden=8, batch=16, steps=25,
                                seed=1, test_size=100, check_every=10,
                                on_check=lambda *a: checks.append(a))
    assert result.steps == 25 and len(result.train) == 25
    assert [s for s, _ in result.test] == [10, 20, 25] == [c[0] for c in checks]
    assert [c[2] for c in checks] == [m for _, m in result.test]
    assert checks[0][1] == pytest.approx(np.mean(result.train[:10]))
    assert np.isfinite(result.train).all() and result.seconds > 0
    assert result.cell == "gru" and not result.has_forget_bias
    _, target = train.test_set(12, 100)
    assert result.baseline == pytest.approx(np.mean((target.astype(np.float64) - 1) ** 2))


def test_forward_and_backward_come_from_the_module_in_its_dtype():
    lstm = load_module("lstm")
    calls = []

    class Spy:
        CELL, STATES, PARAMS = lstm.CELL, lstm.STATES, lstm.PARAMS
        init_params = staticmethod(lstm.init_params)

        def forward(self, params, x, state0=None, *, workspace=None):
            calls.append(("forward", x.dtype, params["b_f"].mean()))
            return lstm.forward(params, x, state0, workspace=workspace)

        def backward(self, params, cache, dy, dstate_T=None, *, workspace=None):
            calls.append(("backward", dy.dtype, None))
            return lstm.backward(params, cache, dy, dstate_T, workspace=workspace)

    result = train.train_adding(Spy(), seq_len=6, hidden=4, batch=3, steps=2, seed=0,
                                test_size=10, dtype=np.float64, forget_bias=2.5)
    assert result.has_forget_bias
    assert [c[0] for c in calls] == ["forward", "backward"] * 2 + ["forward"]
    assert {c[1] for c in calls} == {np.dtype(np.float64)}
    assert 2.0 <= calls[0][2] <= 3.0  # b_f: uniform in +-1/2 (H = 4), plus 2.5


def test_the_training_gradient_matches_central_differences():
    # the whole network (cell, readout of the last output, MSE), in float64
    module, T, B, H = load_module("lstm"), 7, 3, 4
    rng = np.random.default_rng(5)
    params = module.init_params(2, H, rng=rng)
    read = readout.init(H, rng, np.float64)
    x, target = adding.batch(rng, B, T, dtype=np.float64)
    loss, grads, read_grads = train.loss_and_grads(module, params, read, x, target,
                                                   np.zeros((T, B, H)))

    def f(p=params, r=read):
        y, _, _ = module.forward(p, x)
        return np.mean((readout.predict(r, y[-1]) - target) ** 2)

    assert loss == pytest.approx(f())
    eps = 1e-5
    for name in ("W_f", "b_u", "W_c", "b_o"):
        for i in [(0,), (H - 1,)] if params[name].ndim == 1 else [(0, 0), (1, H), (H - 1, H + 1)]:
            plus, minus = params[name].copy(), params[name].copy()
            plus[i] += eps
            minus[i] -= eps
            numeric = (f(p={**params, name: plus}) - f(p={**params, name: minus})) / (2 * eps)
            assert grads[name][i] == pytest.approx(numeric, rel=1e-6, abs=1e-10), (name, i)
    for name in ("V", "c"):
        plus, minus = read[name].copy(), read[name].copy()
        plus[0] += eps
        minus[0] -= eps
        numeric = (f(r={**read, name: plus}) - f(r={**read, name: minus})) / (2 * eps)
        assert read_grads[name][0] == pytest.approx(numeric, rel=1e-6), name
