"""The registry of activations: the one place that knows each activation.

Every activation is a ``sympy.Function`` subclass whose derivative is written in terms of its own
output ``y`` (``sigmoid' = y (1 - y)``), so a derivative of a cached gate comes out as
``Gamma_f*(1 - Gamma_f)`` once the application is replaced by the gate's symbol. Each entry says:

- ``grad``:  the derivative, as a function of the output ``y`` (a SymPy expression);
- ``numpy``: the NumPy form, as a SymPy expression of the argument ``z`` printed by the code printer
  (``None``: the printer emits ``np.<name>`` directly);
- ``latex``: the LaTeX operator name used by the derivation printer.
"""

from dataclasses import dataclass
from typing import Callable

import sympy as sp


@dataclass(frozen=True)
class Activation:
    name: str
    function: type  # the sympy.Function subclass
    grad: Callable[[sp.Expr], sp.Expr]
    numpy: Callable[[sp.Expr], sp.Expr] | None
    latex: str
    doc: str  # one line for the generated helper's docstring


REGISTRY: dict[str, Activation] = {}


def activation(name, *, grad, latex, numpy=None, doc=""):
    """Register an activation and return its SymPy function class."""

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return grad(self)

    function = type(name, (sp.Function,), {"nargs": 1, "fdiff": fdiff})
    REGISTRY[name] = Activation(name, function, grad, numpy, latex, doc)
    return function


# name              derivative in terms of the output y      LaTeX            NumPy form of z
sigmoid = activation("sigmoid", grad=lambda y: y * (1 - y), latex=r"\sigma",
                     numpy=lambda z: (sp.tanh(z / 2) + 1) / 2,
                     doc="1/(1 + exp(-z)) in its tanh form: never overflows, float32 stays float32")
tanh = activation("tanh", grad=lambda y: 1 - y**2, latex=r"\tanh")


def lookup(function):
    """The registry entry of a SymPy function class, or None if it is not an activation."""
    entry = REGISTRY.get(getattr(function, "__name__", None))
    return entry if entry is not None and entry.function is function else None


def is_activation(expr):
    return isinstance(expr, sp.Function) and lookup(expr.func) is not None
