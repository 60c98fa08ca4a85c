"""A time-aware GRU after Che et al. (2018), GRU-D, without its input imputation: the state
decays with the time gap ``dt`` before the step (one number per sample and step), by
``gamma = exp(-relu(w_d dt + b_d))`` per unit, and the seed's GRU runs on the decayed state."""

import sympy as sp

from ..activations import relu, sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("gru_d", states=("a",), inputs=("x", "dt"), sizes={"dt": 1},
                       doc="GRU whose state decays with the time gap dt before each step "
                           "(after Che et al. 2018, GRU-D, without input imputation).")
    a_prev, x, dt = cell.prev("a"), cell.x, cell.input("dt")
    w_d, b_d = cell.param("w_d"), cell.param("b_d")
    z_d = cell.let("z_d", w_d * dt + b_d)
    gamma = cell.let("gamma", sp.exp(-relu(z_d)))
    a_dec = cell.let("a_dec", gamma * a_prev)
    Gamma_u = cell.let("Gamma_u", sigmoid(cell.affine("W_u", [a_dec, x], "b_u")))
    Gamma_r = cell.let("Gamma_r", sigmoid(cell.affine("W_r", [a_dec, x], "b_r")))
    c_tilde = cell.let("c_tilde", tanh(cell.affine("W_c", [Gamma_r * a_dec, x], "b_c")))
    cell.let("a", Gamma_u * c_tilde + (1 - Gamma_u) * a_dec)
    return cell.build()
