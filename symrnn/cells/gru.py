"""The GRU of the seed and Cho et al. (2014): the reset gate acts on a_prev before the candidate's
affine map."""

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("gru", states=("a",),
                       doc="Gated recurrent unit (Cho et al. 2014), in the seed's notation.")
    a_prev, x = cell.prev("a"), cell.x
    Gamma_u = cell.let("Gamma_u", sigmoid(cell.affine("W_u", [a_prev, x], "b_u")))
    Gamma_r = cell.let("Gamma_r", sigmoid(cell.affine("W_r", [a_prev, x], "b_r")))
    c_tilde = cell.let("c_tilde", tanh(cell.affine("W_c", [Gamma_r * a_prev, x], "b_c")))
    cell.let("a", Gamma_u * c_tilde + (1 - Gamma_u) * a_prev)
    return cell.build()
