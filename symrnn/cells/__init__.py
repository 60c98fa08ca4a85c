"""The built-in cells: each a short file of forward equations, nothing else."""

from ..cell import Cell
from . import gru, lstm, rnn

BUILTINS = {"rnn": rnn.build, "gru": gru.build, "lstm": lstm.build}


def get_cell(name) -> Cell:
    """A built-in cell by name (``"rnn"``, ``"gru"``, ``"lstm"``); a ``Cell`` is returned as is."""
    if isinstance(name, Cell):
        return name
    try:
        build = BUILTINS[name]
    except KeyError:
        raise KeyError(f"unknown cell {name!r}; known cells: {', '.join(BUILTINS)}") from None
    return build()
