"""The Python API: cell -> derivation -> source -> module."""

import itertools
import types

from .cell import Cell
from .cells import get_cell
from .derive import Derivation
from .derive import derive as _derive
from .lower import lower
from .render import render

_loaded = itertools.count()


def derive(cell) -> Derivation:
    """The derived BPTT equations of a cell (a ``Cell`` or a built-in cell's name)."""
    return _derive(get_cell(cell))


def generate_source(cell, backend="numpy") -> str:
    """The source of the standalone module for a cell (a ``Cell`` or a built-in cell's name)."""
    return render(lower(derive(cell)), backend)


def load(cell, backend="numpy") -> types.ModuleType:
    """Generate the module for a cell and compile it in memory; nothing is written.

    Every call gives a new module object with a unique name, never one cached in sys.modules.
    """
    cell = get_cell(cell)
    source = generate_source(cell, backend)
    name = f"symrnn_generated_{cell.name}_{next(_loaded)}"
    module = types.ModuleType(name)
    module.__file__ = f"<symrnn:{cell.name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


__all__ = ["Cell", "derive", "generate_source", "get_cell", "load"]
