r"""Reductions over the units of a vector: the one place that knows them.

- ``mean(v)``: what a cell writes, ``(1/H) sum_j v_j``: one number per sample (a per-sample
  scalar, size 1) that broadcasts back over the units wherever an elementwise expression reads it.
  The builder gives every application a ``Mean`` node of its own (``cell.Mean``).
- ``layer_norm(v, eps=1e-5)``: shorthand for ``(v - mu) / sqrt(mean((v - mu)**2) + eps)`` with
  ``mu = mean(v)``, exactly as ``torch.nn.LayerNorm`` (biased variance); the builder expands it
  into those equations, so nothing later knows layer norm.
- ``unitsum(e)``: ``sum_j e_j``, which only the derivation writes: the adjoint of a per-sample
  scalar read by an H-vector expression sums that expression's contributions over the units.

The adjoint of ``mu = mean(v)`` sends ``dmu / H`` to every unit of ``v`` (``UNITS`` is H): that is
``mean``'s derivative, so the derivation's one rule (``sympy.diff``) needs nothing special; it only
wraps a per-sample scalar's contributions from H-vectors in ``unitsum``.
"""

import sympy as sp

from .symbols import sym

UNITS = sym("H")  # the number of units a reduction runs over
LAYER_NORM_EPS = sp.Rational(1, 100000)  # as torch.nn.LayerNorm


class mean(sp.Function):  # noqa: N801 (a SymPy function, named as SymPy names them)
    """``(1/H) sum_j v_j``, a per-sample scalar. Its derivative with respect to any one unit of
    v is 1/H: the adjoint ``dmu / H`` of every unit."""

    nargs = 1

    def fdiff(self, argindex=1):
        return 1 / UNITS


class layer_norm(sp.Function):  # noqa: N801
    """``(v - mean(v)) / sqrt(mean((v - mean(v))**2) + eps)``; the builder expands it."""

    nargs = (1, 2)


class unitsum(sp.Function):  # noqa: N801
    """``sum_j e_j`` over the units of an H-vector expression: a per-sample scalar."""

    nargs = 1

    def fdiff(self, argindex=1):
        raise TypeError("unitsum is not differentiated: the derivation writes it")


# What a cell may call by name (TOML): the function and how many arguments it takes.
CALLS = {"mean": (mean, 1), "layer_norm": (layer_norm, (1, 2))}

__all__ = ["CALLS", "LAYER_NORM_EPS", "UNITS", "layer_norm", "mean", "unitsum"]
