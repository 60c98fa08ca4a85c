"""The GRU as PyTorch and cuDNN compute it (torch.nn.GRU): the reset gate acts on the recurrent
product, after W_hn, and each affine map of the candidate has its own bias. In torch's letters:
r = Gamma_r, z = Gamma_u, n = n, h = a; Gamma_u weighs the previous state."""

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("gru_torch", states=("a",),
                       doc="Gated recurrent unit as in torch.nn.GRU: "
                           "n = tanh(W_in x + b_in + Gamma_r (W_hn a_prev + b_hn)).")
    a_prev, x = cell.prev("a"), cell.x
    Gamma_r = cell.let("Gamma_r", sigmoid(cell.affine("W_r", [a_prev, x], "b_r")))
    Gamma_u = cell.let("Gamma_u", sigmoid(cell.affine("W_u", [a_prev, x], "b_u")))
    n = cell.let("n", tanh(cell.affine("W_in", [x], "b_in")
                           + Gamma_r * cell.affine("W_hn", [a_prev], "b_hn")))
    cell.let("a", (1 - Gamma_u) * n + Gamma_u * a_prev)
    return cell.build()
