"""The one factory for SymPy symbols: the same name always gives the same object.

Every symbol symrnn makes is an H-vector (or the D-vector ``x``) treated elementwise as a scalar, so
all are plain commutative ``Symbol``s. ``sympy.symbols("a,b")`` would split names on commas and
spaces; this factory never does.
"""

import sympy as sp

_SYMBOLS: dict[str, sp.Symbol] = {}


def sym(name: str) -> sp.Symbol:
    symbol = _SYMBOLS.get(name)
    if symbol is None:
        symbol = _SYMBOLS[name] = sp.Symbol(name)
    return symbol


def prev(state: str) -> sp.Symbol:
    """The value of a state at the previous step: ``a`` -> ``a_prev`` (seed: a^{<t-1>})."""
    return sym(f"{state}_prev")


def adjoint(name) -> sp.Symbol:
    """The gradient of the loss with respect to a quantity: ``Gamma_f`` -> ``dGamma_f``."""
    return sym(f"d{name}")


def next_adjoint(state: str) -> sp.Symbol:
    """The gradient arriving at a state from step t+1: ``a`` -> ``da_next``."""
    return sym(f"d{state}_next")


def block(weight: str, inputs, index: int) -> str:
    """The name of the columns of ``weight`` that read ``inputs[index]``: ``W_f_a_prev``.

    A weight that reads a single vector is its own block.
    """
    return weight if len(inputs) == 1 else f"{weight}_{inputs[index]}"


def sequence(name: str) -> str:
    """The array holding a per-step value for every step: ``Gamma_f`` -> ``Gamma_f_seq``."""
    return f"{name}_seq"
