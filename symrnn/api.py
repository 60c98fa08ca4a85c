"""The Python API: cell -> derivation -> source -> module."""

import hashlib
import importlib.util
import itertools
import os
import sys
import types
from functools import cache
from pathlib import Path

from . import approx
from .cell import Cell, CellError
from .cells import builtin
from .derive import Derivation
from .derive import derive as _derive
from .loops import loops
from .lower import lower
from .output import write_atomic
from .render import render, render_network

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


BACKENDS = ("numpy", "numba")  # numba: compiled time loops (symrnn.loops), needs numba


def generate_source(cell, backend="numpy", origin=None) -> str:
    """The source of the standalone module for a cell (anything ``get_cell`` takes).

    ``backend``: "numpy", or "numba" (the same contract, the time loops compiled).
    ``origin``: what to pass to ``symrnn generate`` to regenerate it, said in the header
    (default: the cell's name when it is a string, else the cell's name).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; the backends are {', '.join(BACKENDS)}")
    if origin is None:
        origin = cell if isinstance(cell, str) else get_cell(cell).name
    derivation = _derive(get_cell(cell))
    plan = lower(derivation)
    context = {"loops": loops(derivation, plan), "tanh32": approx} if backend == "numba" else {}
    return render(plan, backend, origin, **context)


def load(cell, backend="numpy") -> types.ModuleType:
    """Generate the module for a cell and compile it in memory; nothing is written.

    Every call gives a new module object. A NumPy module has a unique name and is never put in
    sys.modules. A numba module needs a real file for numba's on-disk cache of machine code: its
    source is written once, named by its content, under ``symrnn_cache_dir()``, and imported
    under that name (in sys.modules, where numba's cache finds it).
    """
    cell = get_cell(cell)
    source = generate_source(cell, backend)
    name = f"symrnn_generated_{cell.name}_{next(_loaded)}"
    if backend == "numba":
        digest = hashlib.sha256(source.encode("utf-8")).hexdigest()[:16]
        name = f"symrnn_numba_{cell.name}_{digest}"  # numba's cache imports it by this name
        path = symrnn_cache_dir() / f"{name}.py"
        if not path.is_file():
            write_atomic(path, source.encode("utf-8"))
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    module = types.ModuleType(name)
    module.__file__ = f"<symrnn:{cell.name}>"
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    return module


def symrnn_cache_dir() -> Path:
    """Where ``load`` keeps numba modules: $SYMRNN_CACHE, else $XDG_CACHE_HOME/symrnn, else
    ~/.cache/symrnn."""
    if os.environ.get("SYMRNN_CACHE"):
        return Path(os.environ["SYMRNN_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "symrnn"


def network_source() -> str:
    """The source of the network module, generated/network.py: stacked and bidirectional layers
    of any generated cell module, in NumPy (the same source for every cell)."""
    return render_network()


@cache
def load_network() -> types.ModuleType:
    """The network module, compiled in memory once (every call gives the same module, so its
    ``Network`` is one class); nothing is written."""
    module = types.ModuleType("symrnn_network")
    module.__file__ = "<symrnn:network>"
    exec(compile(network_source(), module.__file__, "exec"), module.__dict__)
    return module


def network(cell, input_size, hidden_size, *, backend="numpy", num_layers=1,
            bidirectional=False, batch_first=False, **sizes):
    """A ``Network`` (see ``load_network``) of ``num_layers`` layers of a cell (anything
    ``get_cell`` takes), over its module ``load(cell, backend)``; ``sizes``: the cell's sizes
    other than D and H (``P=4``)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; the backends are {', '.join(BACKENDS)}")
    return load_network().Network(load(cell, backend), input_size, hidden_size,
                                  num_layers=num_layers, bidirectional=bidirectional,
                                  batch_first=batch_first, **sizes)


__all__ = ["Cell", "derive", "generate_source", "get_cell", "load", "load_network", "network",
           "network_source"]
