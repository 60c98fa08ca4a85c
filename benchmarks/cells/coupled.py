"""The README's own cell ("Your own cell"), declared as a user declares one: for the benchmark's
comparison with the same cell written in PyTorch (``python benchmarks/bench.py --cells
benchmarks/cells/coupled.py``)."""

from symrnn.activations import sigmoid, tanh
from symrnn.cell import CellBuilder


def build():
    cell = CellBuilder("coupled", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    p = cell.param("p")
    Gamma = cell.let("Gamma", sigmoid(cell.affine("W_g", [a_prev, x], "b_g") + p * a_prev))
    a_tilde = cell.let("a_tilde", tanh(cell.affine("W_a", [Gamma * a_prev, x], "b_a")))
    cell.let("a", (1 - Gamma) * a_prev + Gamma * a_tilde)
    return cell.build()
