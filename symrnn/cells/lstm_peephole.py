"""The LSTM with peephole connections (Gers & Schmidhuber 2000; Graves 2013): the forget and update
gates also read c^{<t-1>}, the output gate reads c^{<t>}, each through an elementwise vector."""

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("lstm_peephole", states=("a", "c"),
                       doc="LSTM with peephole connections (Gers & Schmidhuber 2000).")
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    p_f, p_u, p_o = cell.param("p_f"), cell.param("p_u"), cell.param("p_o")
    Gamma_f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f") + p_f * c_prev))
    Gamma_u = cell.let("Gamma_u", sigmoid(cell.affine("W_u", [a_prev, x], "b_u") + p_u * c_prev))
    c_tilde = cell.let("c_tilde", tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    c = cell.let("c", Gamma_f * c_prev + Gamma_u * c_tilde)
    Gamma_o = cell.let("Gamma_o", sigmoid(cell.affine("W_o", [a_prev, x], "b_o") + p_o * c))
    cell.let("a", Gamma_o * tanh(c))
    return cell.build()
