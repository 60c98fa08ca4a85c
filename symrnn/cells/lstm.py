"""The LSTM exactly as in the seed (with a forget gate, no peepholes)."""

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("lstm", states=("a", "c"),
                       doc="Long short-term memory, exactly as in the seed.")
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    Gamma_f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f")))
    Gamma_u = cell.let("Gamma_u", sigmoid(cell.affine("W_u", [a_prev, x], "b_u")))
    c_tilde = cell.let("c_tilde", tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    Gamma_o = cell.let("Gamma_o", sigmoid(cell.affine("W_o", [a_prev, x], "b_o")))
    c = cell.let("c", Gamma_f * c_prev + Gamma_u * c_tilde)
    cell.let("a", Gamma_o * tanh(c))
    return cell.build()
