"""xLSTM's scalar LSTM, sLSTM (Beck et al. 2024, "xLSTM: Extended Long Short-Term Memory", eqs.
8-17), with exponential input and forget gates: the cell state c is normalised by a normaliser
state n (h = o c / n), and a stabiliser state m keeps the exponentials from overflowing:
m = max(f~ + m_prev, i~), i = exp(i~ - m), f = exp(f~ + m_prev - m), both at most 1. The ratio
c / n is what the stabiliser leaves unchanged."""

import sympy as sp

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("slstm", states=("h", "c", "n", "m"),
                       doc="xLSTM's scalar LSTM with exponential gating and a stabiliser state "
                           "(Beck et al. 2024).")
    h_prev, c_prev, n_prev, m_prev = (cell.prev(s) for s in ("h", "c", "n", "m"))
    x = cell.x
    z = cell.let("z", tanh(cell.affine("W_z", [h_prev, x], "b_z")))
    i_tilde = cell.let("i_tilde", cell.affine("W_i", [h_prev, x], "b_i"))
    f_tilde = cell.let("f_tilde", cell.affine("W_f", [h_prev, x], "b_f"))
    o = cell.let("o", sigmoid(cell.affine("W_o", [h_prev, x], "b_o")))
    m = cell.let("m", sp.Max(f_tilde + m_prev, i_tilde))
    i = cell.let("i", sp.exp(i_tilde - m))
    f = cell.let("f", sp.exp(f_tilde + m_prev - m))
    c = cell.let("c", f * c_prev + i * z)
    n = cell.let("n", f * n_prev + i)
    cell.let("h", o * c / n)
    return cell.build()
