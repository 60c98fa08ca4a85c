"""The minimal gated unit (Zhou, Wu, Zhang & Zhou 2016): a GRU with a single gate, the forget
gate, which both resets the previous state for the candidate and mixes old and new."""

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("mgu", states=("a",), doc="Minimal gated unit (Zhou et al. 2016).")
    a_prev, x = cell.prev("a"), cell.x
    Gamma_f = cell.let("Gamma_f", sigmoid(cell.affine("W_f", [a_prev, x], "b_f")))
    c_tilde = cell.let("c_tilde", tanh(cell.affine("W_c", [Gamma_f * a_prev, x], "b_c")))
    cell.let("a", (1 - Gamma_f) * a_prev + Gamma_f * c_tilde)
    return cell.build()
