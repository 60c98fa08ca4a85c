"""The LSTM with a recurrent projection (Sak, Senior & Beaufays 2014), as
``torch.nn.LSTM(proj_size=P)`` computes it: the cell state c has H units, the output and
recurrent state a has P, the projection ``W_p`` (no bias) of ``Gamma_o * tanh(c)``. The gates
read ``[a_prev, x]``, P + D columns."""

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("lstmp", states=("a", "c"), sizes={"a": "P"},
                       doc="LSTM with a recurrent projection of size P (Sak et al. 2014), as "
                           "torch.nn.LSTM(proj_size=P).")
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    Gamma_f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f")))
    Gamma_u = cell.let("Gamma_u", sigmoid(cell.affine("W_u", [a_prev, x], "b_u")))
    c_tilde = cell.let("c_tilde", tanh(cell.affine("W_c", [a_prev, x], "b_c")))
    Gamma_o = cell.let("Gamma_o", sigmoid(cell.affine("W_o", [a_prev, x], "b_o")))
    c = cell.let("c", Gamma_f * c_prev + Gamma_u * c_tilde)
    h = cell.let("h", Gamma_o * tanh(c))
    cell.let("a", cell.affine("W_p", [h]))
    return cell.build()
