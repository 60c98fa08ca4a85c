"""The built-in cells: each a short file of forward equations, nothing else."""

from ..cell import Cell, CellError
from . import gru, gru_d, gru_torch, lstm, lstm_ln, lstm_peephole, lstmp, mgu, rnn, slstm

BUILTINS = {"rnn": rnn.build, "gru": gru.build, "lstm": lstm.build, "gru_torch": gru_torch.build,
            "lstm_peephole": lstm_peephole.build, "mgu": mgu.build, "lstm_ln": lstm_ln.build,
            "slstm": slstm.build, "lstmp": lstmp.build, "gru_d": gru_d.build}


def builtin(name) -> Cell:
    """A built-in cell by name (``"rnn"``, ``"gru"``, ``"lstm"``, ...)."""
    try:
        build = BUILTINS[name]
    except KeyError:
        raise CellError(f"unknown cell {name!r}; known cells: {', '.join(BUILTINS)} (or a file: "
                        f"mycell.py:build, mycell.toml)") from None
    return build()
