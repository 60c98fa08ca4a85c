"""derive(cell) -> Derivation: reverse-mode accumulation over one step of a cell.

For every node ``n`` (last first), its adjoint ``dn`` is the sum of what its consumers send back:

- an elementwise consumer ``m = f(..., n, ...)`` sends ``(df/dn) dm``, where ``df/dn`` comes from
  ``sympy.diff`` and the application ``f(...)`` is replaced by ``m`` itself, so the derivative is
  written in cached forward values (``sigmoid' -> Gamma_f*(1 - Gamma_f)``, ``exp' -> exp``); where
  ``n`` is a per-sample scalar and ``m`` an H-vector, the contribution is summed over the units
  (``unitsum``); a mean ``mu = mean(v)`` sends ``dmu / H`` (``reductions``);
- an affine consumer ``z = W [v_1, ..., v_k] + b`` sends ``W_j^T dz`` to its j-th input (a
  ``Projection``), and contributes ``sum_t dz [v_1; ...; v_k]^T`` to ``dW``, ``sum_t dz`` to
  ``db``.

A state's new value also receives the gradient arriving from outside the step: ``dy + da_next`` for
the output state, ``dc_next`` for the others. Every input (x, and any other, e.g. a time gap)
gets an adjoint: its projections and, where an equation reads it elementwise, their terms.
The result is plain data; nothing later re-derives.
"""

from collections import defaultdict
from dataclasses import dataclass

import sympy as sp

from .cell import Affine, Cell, Elementwise
from .reductions import UNITS, mean, unitsum
from .symbols import adjoint, next_adjoint, prev, sym

DY = sym("dy")  # the gradient of the loss with respect to this step's output


@dataclass(frozen=True)
class Projection:
    """``W_j^T dz``: what affine node ``affine`` sends back to its input number ``index``."""

    affine: Affine
    index: int

    @property
    def source(self):
        return adjoint(self.affine.out.name)


@dataclass(frozen=True)
class Adjoint:
    """``out = expr + sum(projections)``: the gradient of the loss with respect to ``of``."""

    out: sp.Symbol
    of: sp.Symbol
    expr: sp.Expr
    projections: tuple[Projection, ...]


@dataclass(frozen=True)
class Reduction:
    """A parameter gradient as a sum over time steps (and the batch).

    kind ``"weight"``: ``sum_t dz [inputs]^T``; ``"bias"``: ``sum_t dz``; ``"vector"``: ``sum_t`` of
    the per-step adjoint ``source`` of an elementwise parameter.
    """

    param: sp.Symbol
    kind: str
    source: sp.Symbol
    affine: Affine | None = None


@dataclass(frozen=True)
class Derivation:
    cell: Cell
    forward: tuple[Affine | Elementwise, ...]
    backward: tuple[Adjoint, ...]  # in the order they are computed within a step
    reductions: tuple[Reduction, ...]  # in the order of cell.params
    cached: tuple[sp.Symbol, ...]  # forward values of a step that the backward reads
    per_sample: frozenset = frozenset()  # the adjoints that are one number per sample

    def latex(self, standalone=False) -> str:
        """The derivation in LaTeX (``align*`` blocks, or a whole document), seed notation."""
        from .document import document

        return document(self, "latex", standalone)

    def markdown(self) -> str:
        """The derivation as Markdown with ``$$`` blocks (GitHub, Jupyter)."""
        from .document import document

        return document(self, "markdown")

    def text(self) -> str:
        """The derivation as Unicode text, for terminals."""
        from .document import document

        return document(self, "text")

    def _repr_markdown_(self):
        return self.markdown()

    def _repr_latex_(self):
        from .display import latex
        from .notation import equations

        eq = equations(self)
        rows = [f"{latex(lhs)} &= {latex(rhs)}" for lhs, rhs in eq.forward + eq.backward + eq.sums]
        return "$$\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}$$"


def _by_name(symbols):
    return sorted(symbols, key=lambda s: s.name)


def _partial(expr, v):
    """``d expr / d v`` by ``sympy.diff``, every symbol taken as real (so ``|u|' = sign(u)``)."""
    real = {s: sp.Dummy(s.name, real=True) for s in expr.free_symbols}
    back = {r: s for s, r in real.items()}
    return sp.diff(expr.xreplace(real), real[v]).xreplace(back)


def _own(expr, node):
    """``expr`` written in the node's own output where it holds the node's expression: ``f(u)``
    becomes ``n`` (``exp' = exp``), and for ``n = b**p`` every ``b**q`` with q/p an integer
    becomes ``n**(q/p)`` (``sqrt(u)' = 1/(2 n)``)."""
    expr = expr.xreplace({node.expr: node.out})
    if isinstance(node.expr, sp.Pow) and node.expr.exp.is_Rational:
        base, p = node.expr.args

        def mine(e):
            return isinstance(e, sp.Pow) and e.base == base and (e.exp / p).is_Integer
        expr = expr.replace(mine, lambda e: node.out ** (e.exp / p))
    return expr


def units(size):
    """The symbol of a vector size in a derivation: ``H`` (``reductions.UNITS``), ``P``, ..."""
    return UNITS if size == "H" else sym(size)


def _one_per_sample(expr, cell, per_sample):
    """Whether ``expr`` is one number per sample: it reads sizes (H), per-sample values and the
    adjoints in ``per_sample`` alone."""
    sizes = {units(n) for n in cell.size_names}
    return all(s in sizes or s in per_sample or cell.size(s) == 1 for s in expr.free_symbols)


def _sum_over_units(term, cell, per_sample, size):
    """``sum_j term_j`` for a vector ``term`` of ``size`` units, per-sample factors taken out of
    the sum and the sum split over a sum of terms; a per-sample term sums to H times itself, and
    a vector whose mean is a node ``mu = mean(v)`` to ``H mu`` (so ``sum_j (v - mu)_j`` is 0).
    ``per_sample``: the adjoints whose value is one number per sample."""
    UNITS = units(size)  # noqa: N806 (the reductions' H, here the term's own size)
    means = {n.expr.args[0]: n.out for n in cell.nodes
             if not isinstance(n, Affine) and isinstance(n.expr, mean)}

    def total(e):
        outside, inside = sp.S.One, []
        for factor in sp.Mul.make_args(e):
            if _one_per_sample(factor, cell, per_sample):
                outside *= factor
            else:
                inside.append(factor)
        inside = sp.Mul(*inside)
        if inside == 1:
            return outside * UNITS
        if inside in means:
            return outside * UNITS * means[inside]
        if isinstance(inside, sp.Add):
            return outside * sp.Add(*(total(part) for part in inside.args))
        return outside * unitsum(inside)

    return total(term)


def derive(cell: Cell) -> Derivation:
    terms = defaultdict(list)  # symbol -> elementwise terms of its adjoint
    projections = defaultdict(list)  # symbol -> projections into its adjoint
    for i, state in enumerate(cell.states):
        terms[sym(state)].append(next_adjoint(state))
        if i == 0:
            terms[sym(state)].append(DY)

    def adjoint_of(symbol):
        return Adjoint(adjoint(symbol.name), symbol, sp.Add(*terms[symbol]),
                       tuple(reversed(projections[symbol])))  # in forward order

    backward, reductions = [], {}
    per_sample = {adjoint(n) for n in cell.scalars}  # adjoints of one number per sample
    for node in reversed(cell.nodes):
        backward.append(adjoint_of(node.out))
        dn = adjoint(node.out.name)
        if not backward[-1].projections and _one_per_sample(backward[-1].expr, cell, per_sample):
            per_sample.add(dn)  # e.g. the adjoint of (v - mu)**2 under a mean: dvar / H
        if isinstance(node, Affine):
            for j, v in enumerate(node.inputs):
                projections[v].append(Projection(node, j))
            reductions[node.weight] = Reduction(node.weight, "weight", dn, node)
            if node.bias is not None:
                reductions[node.bias] = Reduction(node.bias, "bias", dn, node)
            continue
        for v in _by_name(node.expr.free_symbols):
            term = _own(_partial(node.expr, v), node) * dn
            if isinstance(node.expr, mean) and cell.size(v) != "H":  # 1/P for a P-vector
                term = term.xreplace({UNITS: units(cell.size(v))})
            if cell.size(v) == 1 and cell.size(node.out) != 1:
                term = _sum_over_units(term, cell, per_sample, cell.size(node.out))
            terms[v].append(term)

    leaving = ([prev(s) for s in cell.states] + [sym(v) for v in cell.inputs]
               + [sym(v) for v in cell.vectors])
    backward += [adjoint_of(v) for v in leaving]
    for v in cell.vectors:
        reductions[sym(v)] = Reduction(sym(v), "vector", adjoint(v))

    values = {n.out for n in cell.nodes} | {prev(s) for s in cell.states}
    read = set()
    for a in backward:
        read |= a.expr.free_symbols & values
    for node in cell.affines:  # dW needs every per-step vector the affine map read
        read |= set(node.inputs) & values
    order = [prev(s) for s in cell.states] + [n.out for n in cell.nodes]
    return Derivation(cell, cell.nodes, tuple(backward),
                      tuple(reductions[sym(p)] for p in cell.params),
                      tuple(v for v in order if v in read), frozenset(per_sample))
