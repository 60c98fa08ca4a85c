"""The README's Python examples run as written and do what they say."""

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FD_TOL, gradient_errors

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


def _generated_module(directory, name):
    """Import directory/generated/NAME.py under a unique name (never a cached module)."""
    path = directory / "generated" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"readme_{name}_{id(directory)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_gradients_right(module, **sizes):
    errors = gradient_errors(module, seed=2, **sizes)
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert errors and not bad, bad


def test_new_cell_in_python_from_the_readme(tmp_path):
    (tmp_path / "mycell.py").write_text(_block("# mycell.py"))
    for command in (["generate", "mycell.py:build"], ["derive", "mycell.py:build", "--format",
                                                      "text"], ["verify", "mycell.py:build"]):
        run = subprocess.run([sys.executable, "-m", "symrnn", *command], cwd=tmp_path,
                             capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
    assert "quantities agree" in run.stdout
    module = _generated_module(tmp_path, "coupled")
    assert module.PARAMS == ("p", "W_g", "b_g", "W_a", "b_a")
    _assert_gradients_right(module)


TOML = dict(re.findall(r'```toml\n(?:#[^\n]*\n)*name = "(\w+)"\n(.*?)```',
                       (ROOT / "README.md").read_text(), re.S))


def test_the_readme_shows_six_toml_cells():
    assert sorted(TOML) == ["cifg", "gru_d", "highway", "lstm_ln", "lstmp", "slstm"]


@pytest.mark.parametrize("name, states", [("cifg", ("a", "c")), ("lstm_ln", ("a", "c")),
                                          ("slstm", ("h", "c", "n", "m")), ("lstmp", ("a", "c")),
                                          ("gru_d", ("a",)), ("highway", ("a",))])
def test_new_cell_in_toml_from_the_readme(tmp_path, name, states):
    (tmp_path / f"{name}.toml").write_text(f'name = "{name}"\n' + TOML[name])
    run = subprocess.run([sys.executable, "-m", "symrnn", "generate", f"{name}.toml"],
                         cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    module = _generated_module(tmp_path, name)
    assert module.STATES == states
    _assert_gradients_right(module, **({"D": 4, "H": 4} if name == "highway" else {}))


def test_variable_lengths_and_network_example(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    namespace = {}
    exec(_block("y_rev, _, _ = lstm.forward"), namespace)
    y, lengths = namespace["y"], namespace["lengths"]
    assert y.shape == (12, 3, 16)
    for b, L in enumerate(lengths):
        assert not y[L:, b].any() and y[L - 1, b].any()
    assert not namespace["dx"][5:, 1].any()


def test_torch_model_exported_to_numpy_example(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(ROOT))
    monkeypatch.chdir(tmp_path)  # it writes model.npz
    namespace = {}
    exec(_block("network_from_torch(model)"), namespace)
    assert (tmp_path / "model.npz").is_file()
    y, expected = namespace["y"], namespace["expected"]
    assert y.shape == expected.shape == (3, 12, 16)
    assert np.abs(y - expected).max() < 1e-5


def test_symrnn_cell_trained_in_pytorch_example():
    pytest.importorskip("torch")
    namespace = {}
    exec(_block("from symrnn.torch import RNN"), namespace)
    baseline = namespace["adding"].baseline_mse(namespace["target"].numpy())
    assert namespace["loss"].item() < 0.5 * baseline
