"""The plain (Elman) recurrent cell: a = tanh(W_a [a_prev, x] + b_a)."""

from ..activations import tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("rnn", states=("a",), doc="Plain RNN: a = tanh(W_a [a_prev, x] + b_a).")
    a_prev, x = cell.prev("a"), cell.x
    cell.let("a", tanh(cell.affine("W_a", [a_prev, x], "b_a")))
    return cell.build()
