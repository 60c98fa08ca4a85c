"""symrnn.vanish: the gradient of a loss on the last output, back through time."""

import tracemalloc
import warnings

import numpy as np
import pytest
from conftest import ROOT, load_module

from symrnn import vanish

SEEDS = range(5)
SMALL = dict(steps=300, hidden=32, input_size=4)


@pytest.mark.parametrize("seed", SEEDS)
def test_rnn_vanishes_and_lstm_keeps_its_gradient_longer(seed):
    rnn = vanish.measure(load_module("rnn"), seed=seed, **SMALL).first_below()
    lstm = vanish.measure(load_module("lstm"), seed=seed, forget_bias=1.0, **SMALL).first_below()
    lstm_open = vanish.measure(load_module("lstm"), seed=seed, forget_bias=3.0, **SMALL)
    # measured for seeds 0-5: rnn 20-27, lstm (forget bias 1) 76-92, lstm (3) never
    assert rnn is not None and rnn <= 60
    # With forget bias 1 the forget gates start near sigmoid(1) = 0.73: the LSTM's gradient
    # also falls below 1e-6 within 300 steps, but about 3x farther back than the RNN's.
    assert lstm is not None and lstm >= 2 * rnn and lstm >= 50
    # forget gates near sigmoid(3) = 0.95 keep it above 1e-6 over all 300 steps (min 5.9e-4)
    assert lstm_open.first_below() is None
    assert lstm_open.relative()[-1] > 1e-5


def test_segments_give_what_one_call_gives():
    module, T, H = load_module("lstm"), 1234, 8
    decay = vanish.measure(module, steps=T, hidden=H, input_size=3, batch=2, seed=7,
                           dtype=np.float64)
    # the same setup, recomputed in one forward and one backward call
    rng = np.random.default_rng(7)
    params = module.init_params(3, H, rng=rng, dtype=np.float64)
    params["b_f"] += 1.0
    x = rng.standard_normal((T, 2, 3))
    w = rng.standard_normal(H)
    y, _, cache = module.forward(params, x)
    dy = np.zeros_like(y)
    dy[-1] = w
    _, dx, _ = module.backward(params, cache, dy)
    direct = np.linalg.norm(dx.reshape(T, -1), axis=1)[::-1]
    np.testing.assert_allclose(decay.dx, direct, rtol=1e-10, atol=0)
    assert decay.first_below() == int(np.argmax(direct / direct[0] < 1e-6))

    # dL/da<T-d>: from the state after T - d steps, the remaining d steps alone
    for d in (1, 10, 100, 1000):
        _, state, _ = module.forward(params, x[:T - d])
        _, _, tail = module.forward(params, x[T - d:], state)
        dy_tail = np.zeros((d, 2, H))
        dy_tail[-1] = w
        _, _, dstate = module.backward(params, tail, dy_tail)
        assert decay.dstate[d] == pytest.approx(np.linalg.norm(dstate["a"]), rel=1e-10)
    assert decay.dstate[0] == pytest.approx(np.sqrt(2) * np.linalg.norm(w))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ten_thousand_steps_without_overflow_or_nan(dtype):
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        for cell in ("rnn", "gru", "lstm"):
            decay = vanish.measure(load_module(cell), steps=10_000, hidden=16, input_size=4,
                                   seed=1, dtype=dtype)
            assert np.isfinite(decay.dx).all() and decay.dx[0] > 0, cell
            assert np.isfinite(list(decay.dstate.values())).all(), cell
            assert decay.first_below() is not None, cell  # at forget bias 1, all three do


def test_memory_grows_linearly_with_the_sequence():
    module = load_module("lstm")

    def peak(steps):
        tracemalloc.start()
        vanish.measure(module, steps=steps, hidden=64, input_size=4, batch=8)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    peak(100)  # whatever is allocated once
    p500, p1000, p2000 = peak(500), peak(1000), peak(2000)
    # bytes per step from 500 to 1000 steps and from 1000 to 2000: equal when memory is
    # linear in T (measured: ratio 1.00), twice as many when it is quadratic
    ratio = ((p2000 - p1000) / 1000) / ((p1000 - p500) / 500)
    assert 0.8 < ratio < 1.3, (p500, p1000, p2000)


def test_table_and_series():
    decays = [vanish.measure(load_module(c), steps=150, hidden=8, input_size=2, seed=0)
              for c in ("rnn", "lstm")]
    lines = vanish.format_table(decays)
    assert lines[1].split() == ["distance", "d", "rnn", "lstm"]
    assert [line.split()[0] for line in lines[2:5]] == ["1", "10", "100"]  # only d < T
    first = lines[5].split()
    assert first[-2:] == [str(decays[0].first_below()), str(decays[1].first_below())]
    assert lines[2].split()[1] == f"{decays[0].relative()[1]:.2e}"
    rows = vanish.series_rows(decays)
    assert len(rows) == 150 and rows[0] == (0, 1.0, 1.0)
    assert rows[37] == (37, decays[0].relative()[37], decays[1].relative()[37])
    with pytest.raises(ValueError, match="steps"):
        vanish.measure(load_module("rnn"), steps=1, hidden=4, input_size=2)


def test_the_readme_table_is_what_vanish_measures():
    """The README's table, from `symrnn vanish rnn gru lstm --steps 10000` (float32)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Vanishing gradients, measured"):]
    rows = {cells[0]: cells[1:4] for line in section.splitlines()[:60]
            if (cells := [c.strip() for c in line.strip("|").split("|")])[0].startswith(
                ("d = ", "first d"))}
    decays = [vanish.measure(load_module(c), steps=10_000, hidden=64, input_size=8)
              for c in ("rnn", "gru", "lstm")]
    for d in (1, 10, 100):
        shown = [float(v) for v in rows[f"d = {d}"]]
        np.testing.assert_allclose(shown, [x.relative()[d] for x in decays], rtol=0.01)
    assert rows["first d below 1e-6"] == [str(x.first_below()) for x in decays]
