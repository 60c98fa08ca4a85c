"""The Python API: cell -> derivation -> source -> module."""

import importlib.util
import itertools
import types
from pathlib import Path

from .cell import Cell, CellError
from .cells import builtin
from .derive import Derivation
from .derive import derive as _derive
from .lower import lower
from .render import render

_loaded = itertools.count()


def get_cell(spec) -> Cell:
    """A cell from what a user names: a ``Cell`` as is, a built-in's name (``"lstm"``), a Python
    file and the function in it that builds the cell (``"mycell.py:build"``; ``:build`` may be
    left out), or a TOML spec (``"mycell.toml"``)."""
    if isinstance(spec, Cell):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"a cell is a Cell, a name or a file, not {type(spec).__name__}")
    if spec.endswith(".toml"):
        from .spec import load_spec

        return load_spec(spec)
    if spec.endswith(".py") or ".py:" in spec:
        return _from_python(spec)
    return builtin(spec)


def _from_python(spec):
    path, _, name = spec.partition(".py:") if ".py:" in spec else (spec[:-3], "", "build")
    path = Path(path + ".py")
    if not path.is_file():
        raise CellError(f"{path}: no such file")
    module_spec = importlib.util.spec_from_file_location(f"symrnn_user_{path.stem}", path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)  # the user's own code, run as Python runs it
    builder = getattr(module, name, None)
    if not callable(builder):
        raise CellError(f"{path}: defines no function {name!r} (name it: {path}:FUNCTION)")
    cell = builder()
    if not isinstance(cell, Cell):
        raise CellError(f"{path}:{name}() returned {type(cell).__name__}, not a Cell "
                        f"(end it with: return cell.build())")
    return cell


def derive(cell) -> Derivation:
    """The derived BPTT equations of a cell (anything ``get_cell`` takes)."""
    return _derive(get_cell(cell))


def generate_source(cell, backend="numpy", origin=None) -> str:
    """The source of the standalone module for a cell (anything ``get_cell`` takes).

    ``origin``: what to pass to ``symrnn generate`` to regenerate it, said in the header
    (default: the cell's name when it is a string, else the cell's name).
    """
    if origin is None:
        origin = cell if isinstance(cell, str) else get_cell(cell).name
    return render(lower(derive(cell)), backend, origin)


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
