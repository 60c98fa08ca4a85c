"""The LSTM with layer normalisation (Ba, Kiros & Hinton 2016, "Layer Normalization", LN-LSTM):
every gate's pre-activation is normalised over its units and given a gain and a bias of its own,
and so is the cell state before the output's tanh. Each normalisation is ``torch.nn.LayerNorm``'s
(eps 1e-5, biased variance); the affine maps have no bias, the normalisations' biases take its
place."""

from ..activations import sigmoid, tanh
from ..cell import CellBuilder


def build():
    cell = CellBuilder("lstm_ln", states=("a", "c"),
                       doc="LSTM with layer normalisation per gate and on the cell state "
                           "(Ba, Kiros & Hinton 2016).")
    a_prev, c_prev, x = cell.prev("a"), cell.prev("c"), cell.x
    gain = {k: (cell.param(f"g_{k}"), cell.param(f"b_{k}")) for k in "fucos"}  # s: the state's

    def normalised(k):  # g_k * LN(W_k [a_prev, x]) + b_k
        return gain[k][0] * cell.layer_norm(cell.affine(f"W_{k}", [a_prev, x])) + gain[k][1]

    Gamma_f = cell.let("Gamma_f", sigmoid(normalised("f")))
    Gamma_u = cell.let("Gamma_u", sigmoid(normalised("u")))
    c_tilde = cell.let("c_tilde", tanh(normalised("c")))
    Gamma_o = cell.let("Gamma_o", sigmoid(normalised("o")))
    c = cell.let("c", Gamma_f * c_prev + Gamma_u * c_tilde)
    g_s, b_s = gain["s"]
    cell.let("a", Gamma_o * tanh(g_s * cell.layer_norm(c) + b_s))
    return cell.build()
