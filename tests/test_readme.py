"""The README's Python examples run as written and do what they say."""

import re
from pathlib import Path

import numpy as np

import symrnn

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)


def _block(containing):
    (found,) = [b for b in BLOCKS if containing in b]
    return found


def test_training_example_learns(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))  # `from generated import lstm`, as from the repo root
    namespace = {}
    exec(_block("plain SGD"), namespace)
    losses = namespace["losses"]
    assert len(losses) == 1000 and np.isfinite(losses).all()
    assert np.mean(losses[-50:]) < 0.5 * np.mean(losses[:50])


def test_own_cell_example_is_the_seed_lstm():
    namespace = {}
    exec(_block("CellBuilder"), namespace)
    mine, builtin = namespace["module"], symrnn.load("lstm")
    assert mine.CELL == "my_lstm" and mine.PARAMS == builtin.PARAMS
    rng = np.random.default_rng(0)
    params = builtin.init_params(3, 4, rng=1)
    x = rng.standard_normal((5, 2, 3))
    y_mine, state_mine, _ = mine.forward(params, x)
    y_builtin, state_builtin, _ = builtin.forward(params, x)
    np.testing.assert_array_equal(y_mine, y_builtin)
    np.testing.assert_array_equal(state_mine["c"], state_builtin["c"])
