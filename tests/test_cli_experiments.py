"""``symrnn vanish`` and ``symrnn train`` through ``symrnn.cli.main``, in a temporary directory
(in this process: a new interpreter per command would cost a second each)."""

import csv
import importlib.util
import io
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import load_module, needs_numba

from symrnn import cli, progress, vanish

HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None
needs_matplotlib = pytest.mark.skipif(not HAS_MATPLOTLIB, reason="the plot extra is not installed")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    """run(args, cwd) -> (returncode, stdout, stderr) of ``symrnn args`` run in ``cwd``."""

    def run(args, cwd):
        monkeypatch.chdir(cwd)
        try:
            code = cli.main(args)
        except SystemExit as e:  # argparse
            code = e.code
        out, err = capsys.readouterr()
        return SimpleNamespace(returncode=code, stdout=out, stderr=err)

    return run


def _ok(proc):
    assert proc.returncode == 0, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def _one_line_error(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("symrnn: error:"), proc.stderr
    for word in words:
        assert word in lines[0], lines[0]


def test_vanish_prints_the_table_and_writes_the_csv(run, tmp_path):
    proc = _ok(run(["vanish", "rnn", "lstm", "--steps", "120", "--hidden", "8", "--input", "2",
                    "--seed", "3", "--csv", "out.csv"], tmp_path))
    expected = [vanish.measure(load_module(c), steps=120, hidden=8, input_size=2, seed=3)
                for c in ("rnn", "lstm")]
    lines = proc.stdout.splitlines()
    row = next(line for line in lines if line.startswith("first d <"))
    assert row.split()[-2:] == [str(d.first_below()) for d in expected]
    assert "T = 120 steps" in lines[0] and "float32" in lines[0]
    assert any("note: rnn has no parameter b_f" in line for line in lines)
    assert not any("note: lstm" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]  # nothing else written

    rows = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert rows[0] == ["distance", "rnn", "lstm"]
    assert len(rows) == 121 and [r[0] for r in rows[1:]] == [str(d) for d in range(120)]
    series = np.array(rows[1:], dtype=np.float64)
    assert (series[0, 1:] == 1).all()
    for column, decay in enumerate(expected, start=1):
        np.testing.assert_allclose(series[:, column], decay.relative(), rtol=1e-8)


@pytest.mark.parametrize("args, words", [
    (["vanish", "rnn", "--steps", "1"], ["--steps", "at least 2"]),
    (["vanish", "rnn", "--steps", "ten"], ["--steps", "'ten'"]),
    (["vanish", "rnn", "--hidden", "0"], ["--hidden"]),
    (["vanish", "rnn", "--dtype", "float16"], ["--dtype", "float16"]),
    (["vanish", "nosuchcell"], ["nosuchcell", "lstm"]),
    (["vanish"], ["CELL"]),
    (["train", "adding", "--seq-len", "1"], ["--seq-len"]),
    (["train", "adding", "--lr", "0"], ["--lr"]),
    (["train", "adding", "--clip", "-1"], ["--clip"]),
    (["train", "adding", "--cell", "nosuchcell"], ["nosuchcell"]),
    (["train", "copying"], ["copying", "adding"]),
])
def test_bad_input_is_one_line_and_exit_status_2(run, tmp_path, args, words):
    _one_line_error(run(args, tmp_path), *words)
    assert list(tmp_path.iterdir()) == []


def test_plot_without_matplotlib_names_the_extra_before_running(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib: ImportError
    for args in (["vanish", "rnn", "--plot", "v.png"], ["train", "adding", "--plot", "l.png"]):
        proc = run(args, tmp_path)
        _one_line_error(proc, "matplotlib", "symrnn[plot]")
        assert proc.stdout == ""  # refused before anything ran
    assert list(tmp_path.iterdir()) == []


@needs_matplotlib
def test_vanish_plot_is_a_png(run, tmp_path):
    proc = _ok(run(["vanish", "rnn", "gru", "--steps", "60", "--hidden", "8", "--plot",
                    "v.png"], tmp_path))
    assert "wrote v.png" in proc.stdout
    assert (tmp_path / "v.png").read_bytes().startswith(PNG)


@needs_matplotlib
def test_train_reports_and_plots(run, tmp_path):
    proc = _ok(run(["train", "adding", "--cell", "gru", "--seq-len", "10", "--hidden", "8",
                    "--batch", "8", "--steps", "150", "--seed", "2", "--plot", "loss.png"],
                   tmp_path))
    out = proc.stdout
    assert "step    100  train MSE" in out and "step    150  train MSE" in out
    assert "baseline (always predicting 1): test MSE 0.1" in out
    result = next(line for line in out.splitlines() if line.startswith("result:"))
    assert "gru, T = 10, seed 2" in result and "after 150 steps" in result
    assert "note: gru has no parameter b_f" in out
    assert (tmp_path / "loss.png").read_bytes().startswith(PNG)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loss.png"]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_only_on_a_terminal():
    assert not progress.shown(progress.bar(10, "x", stream=io.StringIO()))
    on_terminal = progress.bar(10, "x", stream=_Terminal())
    assert progress.shown(on_terminal) == (importlib.util.find_spec("tqdm") is not None)
    on_terminal.update(3)
    on_terminal.close()


@needs_numba
def test_vanish_on_the_numba_module_gives_the_numpy_modules_series(run, tmp_path):
    series = {}
    for backend in ("numpy", "numba"):
        _ok(run(["vanish", "lstm", "rnn", "--steps", "60", "--hidden", "8", "--dtype", "float64",
                 "--backend", backend, "--csv", f"{backend}.csv"], tmp_path))
        rows = list(csv.reader(io.StringIO((tmp_path / f"{backend}.csv").read_text())))
        series[backend] = np.array(rows[1:], dtype=float)
    assert series["numpy"].shape == (60, 3)
    np.testing.assert_allclose(series["numba"], series["numpy"], rtol=1e-9, atol=1e-300)


def test_train_with_a_backend_that_is_not_installed_is_a_one_line_error(run, tmp_path,
                                                                        without_numba):
    proc = run(["train", "adding", "--cell", "lstm", "--backend", "numba"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "symrnn: error: the numba backend needs numba: pip install 'symrnn[numba]'"]
