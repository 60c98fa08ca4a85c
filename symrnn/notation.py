"""The derivation in the seed's notation, as equations of SymPy objects.

``equations(derivation)`` turns a Derivation into three lists of ``(lhs, rhs)`` pairs (forward,
backward, parameter sums) built from a few display-only SymPy functions:

- ``Value(v, k)``: the vector ``v`` at step ``t + k`` (``Value(a, -1)`` is ``a^{<t-1>}``);
- ``Delta(Value, via)``: its gradient ``delta v = dL/dv``; with ``via`` the part of it that flows
  back through step ``t + via`` (``delta_{t+1} a^{<t>}`` arrives from the next step);
- ``OutputGrad()``: ``dL/dy^{<t>}``, the loss's own gradient at this step's output;
- ``AffineMap(W, b, v...)``: ``W [v1, v2] + b``; ``Block(W, label)``: the columns of ``W`` that
  read one vector; ``Project(block, dz)``: ``block^T dz``;
- ``SumOverT(e)``: ``sum_t e``; ``Outer(dz, v...)``: ``dz [v1; v2]^T``; ``Grad(p)``: ``dL/dp``;
- in a cell of several sizes (``sized``): ``Units("P")``, the number P of units of a size (H stays
  ``reductions.UNITS``), and ``Mean(v, n)``, ``UnitSum(e, n)``: ``mean`` and ``unitsum`` over
  the n units of their vector, printed with their range (``sum_{j=1}^{P}``).

The printers in ``symrnn.printing`` (LaTeX, text) print these; the equations are built once here.
Nodes the cell builder made by itself (``tanh_c`` for ``tanh(c)``, ``Gamma_r_a_prev`` for
``Gamma_r * a_prev``) are shown as the expressions they stand for, as the seed writes them.
"""

from dataclasses import dataclass

import sympy as sp
from sympy.core.symbol import Str
from sympy.printing.precedence import PRECEDENCE

from .activations import is_activation
from .cell import Affine
from .derive import DY
from .reductions import UNITS, mean, unitsum
from .symbols import adjoint, next_adjoint, prev, sym
from .symbols import block as symbol_block


class Value(sp.Function):
    nargs = 2  # (Str name, step offset)


class Delta(sp.Function):
    nargs = 2  # (Value, via): via is WHOLE for the whole gradient, else a step offset


class OutputGrad(sp.Function):
    nargs = 0


class AffineMap(sp.Function):
    precedence = PRECEDENCE["Add"]  # (W, b or 0, v...)


class Block(sp.Function):
    nargs = 2  # (W, Str label)


class Project(sp.Function):
    nargs = 2  # (block, dz)
    precedence = PRECEDENCE["Mul"]


class SumOverT(sp.Function):
    nargs = 1
    precedence = PRECEDENCE["Add"]


class Outer(sp.Function):
    precedence = PRECEDENCE["Mul"]  # (dz, v...)


class Grad(sp.Function):
    nargs = 1


class Units(sp.Symbol):
    """The number of units of a vector size other than H (``P``): a number where it is printed."""


class Mean(sp.Function):
    nargs = 2  # (v, its number of units): (1/n) sum_{j=1}^{n} v_j


class UnitSum(sp.Function):
    nargs = 2  # (e, its number of units): sum_{j=1}^{n} e_j


def units(size):
    """How a vector size is shown: H as ``reductions.UNITS``, any other as ``Units``."""
    return UNITS if size == "H" else Units(size)


def is_units(expr):
    """Whether ``expr`` is a number of units (H, P, ...), printed as a number."""
    return expr == UNITS or isinstance(expr, Units)


def sized(cell):
    """Whether the derivation states its vectors' sizes (``Cell.sized``); any other cell prints
    as it always has."""
    return cell.sized


def _sizer(derivation):
    """A function giving a raw expression its display sizes (``Mean``, ``UnitSum``, ``Units``)
    in a ``sized`` cell; the identity in any other."""
    cell = derivation.cell
    if not sized(cell):
        return lambda expr: expr
    of = {a.out: a.of for a in derivation.backward}  # an adjoint has its quantity's size
    names = {sym(n) for n in cell.size_names}

    def size(expr):
        found = sorted({str(cell.size(of.get(s, s))) for s in expr.free_symbols
                        if s not in names and not isinstance(s, Units)} - {"1"})
        return found[0] if found else "H"

    def sizes(expr):
        expr = expr.replace(lambda e: isinstance(e, mean),
                            lambda e: Mean(e.args[0], units(size(e.args[0]))))
        expr = expr.replace(lambda e: isinstance(e, unitsum),
                            lambda e: UnitSum(e.args[0], units(size(e.args[0]))))
        return expr.xreplace({sym(n): Units(n) for n in cell.size_names if n != "H"})
    return sizes


class Maximum(sp.Function):
    """``max(...)`` for display: SymPy's ``Max`` would compare its display arguments."""


class Minimum(sp.Function):
    """``min(...)`` for display."""


def _shown(expr, values, sizes=lambda expr: expr):
    """``expr`` with its symbols replaced by how they are shown (``max`` kept unevaluated, the
    reductions and sizes as ``sizes`` gives them)."""
    expr = sizes(expr)
    extreme = {sp.Max: Maximum, sp.Min: Minimum}
    expr = expr.replace(lambda e: type(e) in extreme, lambda e: extreme[type(e)](*e.args))
    return expr.xreplace(values)


WHOLE = sp.nan  # Delta(v, WHOLE): the whole gradient with respect to v


@dataclass(frozen=True)
class Equations:
    cell: str
    forward: tuple[tuple[sp.Basic, sp.Basic], ...]
    backward: tuple[tuple[sp.Basic, sp.Basic], ...]
    sums: tuple[tuple[sp.Basic, sp.Basic], ...]
    blocks: tuple[tuple[sp.Basic, str, sp.Basic], ...]  # (Block, code name, what it reads)
    names: dict  # the code name of each row's left-hand side in forward and backward: "dz_f"


def value(name, step=0):
    return Value(Str(name), step)


def _label(v, cell):
    """The vector a block of a weight reads, as the seed would name it: a state (the previous
    state, or a node reading it: ``Gamma_r * a_prev`` is read by ``W_c[a]``), or x. A node symrnn
    made, having no name of its own to show, is labelled by the one previous state it reads
    through elementwise nodes (GRU-D's ``Gamma_r * a_dec``, with ``a_dec = gamma * a_prev``)."""
    for s in cell.states:
        if v == prev(s):
            return s
    nodes, seen = {n.out: n for n in cell.nodes}, set()

    def reads(symbol, through):
        node = nodes.get(symbol)
        if node is None or isinstance(node, Affine) or symbol in seen:
            return set()
        seen.add(symbol)
        found = {s for s in cell.states if prev(s) in node.expr.free_symbols}
        if through:
            for used in node.expr.free_symbols:
                found |= reads(used, through)
        return found

    states = reads(v, through=False)
    if not states and v.name in cell.made:
        seen.clear()
        states = reads(v, through=True)
    return next(iter(states)) if len(states) == 1 else v.name


def equations(derivation) -> Equations:
    cell, sizes = derivation.cell, _sizer(derivation)
    # how each forward symbol is shown; made nodes and affine maps are written out where used
    shown = {sym(v): value(v) for v in cell.inputs}
    for s in cell.states:
        shown[prev(s)], shown[sym(s)] = value(s, -1), value(s)
    readers = {}  # how many nodes read each value
    for node in cell.nodes:
        for v in (node.inputs if isinstance(node, Affine) else node.expr.free_symbols):
            readers[v] = readers.get(v, 0) + 1
    own_rows = []  # affine maps read by several nodes: a row z_k = W_k [...] of their own
    for node in cell.nodes:
        if isinstance(node, Affine):
            shown[node.out] = AffineMap(node.weight, node.bias if node.bias is not None else 0,
                                        *(shown[v] for v in node.inputs))
            if readers.get(node.out, 0) > 1:
                own_rows.append((value(node.out.name), shown[node.out], node))
                shown[node.out] = value(node.out.name)
        elif node.out.name in cell.made:
            shown[node.out] = _shown(node.expr, shown, sizes)
        else:
            shown.setdefault(node.out, value(node.out.name))
    rows = [n for n in cell.nodes if not isinstance(n, Affine) and n.out.name not in cell.made]
    own = {node: (lhs, rhs) for lhs, rhs, node in own_rows}
    forward = tuple(own[n] if n in own else (shown[n.out], _shown(n.expr, shown, sizes))
                    for n in cell.nodes if n in own or n in rows)
    names = {shown[n.out]: n.out.name for n in rows}
    names.update({lhs: node.out.name for lhs, _, node in own_rows})

    def block(a, j):
        if len(a.inputs) == 1:
            return a.weight
        return Block(a.weight, Str(_label(a.inputs[j], cell)))

    # backward: in the backward an affine map's value is z^{<t>}; gradients of made nodes are
    # written out where they are used
    values = {**shown, **{a.out: value(a.out.name) for a in cell.affines}}
    grads = {DY: OutputGrad()}
    for s in cell.states:
        grads[next_adjoint(s)] = Delta(values[sym(s)], 1)
        grads[adjoint(prev(s).name)] = Delta(values[prev(s)], 0)
    # a made pre-activation whose gradient is read in several places gets a line of its own
    reads = {a.out: 0 for a in derivation.backward}
    for a in derivation.backward:
        for v in list(a.expr.free_symbols) + [p.source for p in a.projections]:
            reads[v] = reads.get(v, 0) + 1
    made = {adjoint(n.out.name) for n in cell.nodes if n.out.name in cell.made}
    preactivations = {n.expr.args[0] for n in cell.nodes
                      if not isinstance(n, Affine) and is_activation(n.expr)}
    alias = {a.expr: a.of for a in derivation.backward
             if a.of in values and a.expr in made and not a.projections
             and any(a.of == n.out for n in cell.affines)}
    backward, per_step = [], {}
    for a in derivation.backward:
        rhs = sp.Add(_shown(a.expr, {**values, **grads}, sizes),
                     *(Project(block(p.affine, p.index), grads[p.source]) for p in a.projections))
        per_step[a.out] = rhs
        if a.out in alias:  # shown under the name of the affine map it passes through
            grads[a.out] = Delta(value(alias[a.out].name), WHOLE)
            backward.append((grads[a.out], rhs))
            names[grads[a.out]] = a.out.name
        elif a.expr in alias and not a.projections:
            grads[a.out] = grads[a.expr]  # dz_f = dz_Gamma_f: the same gradient
        elif a.of in preactivations and reads[a.out] > 1:
            grads[a.out] = Delta(value(a.of.name), WHOLE)
            backward.append((grads[a.out], rhs))
            names[grads[a.out]] = a.out.name
        elif a.of.name in cell.made:
            grads[a.out] = rhs
        elif a.of.name not in cell.vectors:  # a parameter vector's gradient is summed below
            grads.setdefault(a.out, Delta(values[a.of], WHOLE))
            backward.append((grads[a.out], rhs))
            names[grads[a.out]] = a.out.name

    sums = []
    for r in derivation.reductions:
        if r.kind == "weight":
            rhs = Outer(grads[r.source], *(shown[v] for v in r.affine.inputs))
        else:
            rhs = grads[r.source] if r.kind == "bias" else per_step[r.source]
        sums.append((Grad(r.param), SumOverT(rhs)))

    blocks = tuple((block(a, j), symbol_block(a.weight.name, [v.name for v in a.inputs], j),
                    shown[v])
                   for a in cell.affines if len(a.inputs) > 1 for j, v in enumerate(a.inputs))
    return Equations(cell.name, forward, tuple(backward), tuple(sums), blocks, names)
