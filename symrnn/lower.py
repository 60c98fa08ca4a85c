"""lower(derivation) -> Plan: decide the NumPy shape of the computation.

The Plan is what a backend's template renders. Decisions made here (and only here):

- each affine weight is split into column blocks, one per vector it reads (``W_f = [W_f_a_prev,
  W_f_x]``), as views of the caller's array;
- the input's share ``x W_x^T + b`` of every affine map is one matrix product over all T steps,
  computed before the time loop; inside the loop only the recurrent products remain;
- the forward keeps, per step, exactly the values the backward reads (``Derivation.cached``), and
  the states for every step;
- the backward keeps ``dz`` of every affine map for all steps, and forms ``dW``, ``db`` and ``dx``
  after the loop as single matrix products and reductions.

Every expression is printed by ``printing.CodePrinter``; the names follow ``symbols``.
"""

from dataclasses import dataclass

import sympy as sp

from . import __version__
from .activations import REGISTRY
from .cell import INPUT, RESERVED, Affine, CellError
from .derive import DY, Derivation
from .printing import CodePrinter, ShapePrinter, helpers_used, matmul
from .symbols import adjoint, block, next_adjoint, prev, sequence, sym

H, D = sp.Symbol("H"), sp.Symbol("D")
_T = sp.Symbol("t")


@dataclass(frozen=True)
class Block:
    """The columns ``cols`` of an affine weight that read the vector ``input``."""

    var: str  # W_f_a_prev
    weight: str  # W_f
    cols: str  # a slice, e.g. ":H"; "" when the weight reads only this vector
    view: str  # W_f[:, :H]
    input: str  # a_prev
    history: str  # the input at every step, (T, B, size): a_seq[:-1], x, Gamma_r_a_prev_seq


@dataclass(frozen=True)
class AffinePlan:
    out: str  # z_f
    weight: str
    bias: str | None
    blocks: tuple[Block, ...]
    x_block: Block | None  # the block reading x, done for all steps before the loop
    recurrent: tuple[Block, ...]  # the blocks done inside the loop
    hoisted: str | None  # z_f_x = x @ W_f_x.T + b_f, for all steps
    store: str | None  # where z is also kept for the backward, e.g. "z_h_seq[t]"
    grad: str  # dW_f
    bias_grad: str | None  # db_f
    dz: str  # dz_f
    dz_history: str  # dz_f_seq


@dataclass(frozen=True)
class Statement:
    target: str
    code: str
    store: str | None = None  # where the value is also kept, e.g. "Gamma_f_seq[t]"


@dataclass(frozen=True)
class Plan:
    cell: str
    version: str
    doc: str
    states: tuple[str, ...]
    params: tuple[str, ...]
    shapes: tuple[tuple[str, str], ...]  # (param, shape code in D and H)
    sizes_from: tuple[str, int]  # (a weight reading x, how many H-sized vectors it reads)
    helpers: tuple[tuple[str, str, str], ...]  # (name, body code, docstring)
    text: dict  # the docstring's equations: "sections", "legend", "names"
    affines: tuple[AffinePlan, ...]
    forward: tuple[AffinePlan | Statement, ...]  # inside the loop, in order
    step_loads: tuple[Statement, ...]  # previous states read at the top of a forward step
    kept: tuple[str, ...]  # per-step forward values kept for the backward (besides states)
    cache: tuple[str, ...]  # the keys of the cache, each also the name of its array
    loads: tuple[Statement, ...]  # at the top of a backward step
    backward: tuple[Statement, ...]  # inside the loop, in order
    vectors: tuple[tuple[str, str, str], ...]  # (p, dp, the per-step contribution to dp)
    carries: tuple[tuple[str, str, str], ...]  # (a, da_next, da_prev) for every state
    dx: str  # code for dx after the loop
    grads: tuple[tuple[str, str], ...]  # (param, gradient variable)


def _slice(start, stop, total):
    printer = ShapePrinter()
    left = "" if start == 0 else printer.doprint(start)
    right = "" if sp.expand(stop - total) == 0 else printer.doprint(stop)
    return f"{left}:{right}"


def _history(name, cell):
    """The code of a per-step vector at every step, (T, B, size)."""
    if name == INPUT:
        return INPUT
    for s in cell.states:
        if name == prev(s).name:
            return f"{sequence(s)}[:-1]"
    return sequence(name)


def _affine(node: Affine, cell, kept) -> AffinePlan:
    names = [v.name for v in node.inputs]
    sizes = [D if n == INPUT else H for n in names]
    blocks, start = [], sp.Integer(0)
    for j, name in enumerate(names):
        stop = sp.Add(start, sizes[j], evaluate=False) if start != 0 else sizes[j]
        cols = "" if len(names) == 1 else _slice(start, stop, sp.Add(*sizes))
        blocks.append(Block(block(node.weight.name, names, j), node.weight.name, cols,
                            f"{node.weight.name}[:, {cols}]", name, _history(name, cell)))
        start = stop
    x_block = next((b for b in blocks if b.input == INPUT), None)
    out = node.out.name
    return AffinePlan(
        out, node.weight.name, node.bias.name if node.bias is not None else None, tuple(blocks),
        x_block, tuple(b for b in blocks if b is not x_block),
        f"{out}_{INPUT}" if x_block is not None else None,
        _store(node.out, cell, kept),
        adjoint(node.weight.name).name,
        adjoint(node.bias.name).name if node.bias is not None else None,
        adjoint(out).name, sequence(adjoint(out).name))


def _statement(target, code, store, read):
    """``target = code``, also kept in ``store``; with no local name if nothing reads it."""
    if store is not None and sym(target) not in read:
        return Statement(store, code)
    return Statement(target, code, store)


def _store(symbol, cell, kept):
    if symbol.name in cell.states:
        return f"{sequence(symbol.name)}[t + 1]"
    return f"{sequence(symbol.name)}[t]" if symbol.name in kept else None


def lower(derivation: Derivation) -> Plan:
    cell = derivation.cell
    code = CodePrinter()
    state_values = {prev(s) for s in cell.states} | {sym(s) for s in cell.states}
    kept = tuple(v.name for v in derivation.cached if v not in state_values)
    affines = {a.out: _affine(a, cell, kept) for a in cell.affines}

    read_forward = set().union(*(n.expr.free_symbols if not isinstance(n, Affine)
                                 else set(n.inputs) for n in cell.nodes))
    forward = []
    for node in derivation.forward:
        if isinstance(node, Affine):
            forward.append(affines[node.out])
        else:
            forward.append(_statement(node.out.name, code.doprint(node.expr),
                                      _store(node.out, cell, kept), read_forward))

    def projected(a):
        return sp.Add(a.expr, *(matmul(p.source, sym(block(
            p.affine.weight.name, [v.name for v in p.affine.inputs], p.index)))
            for p in a.projections))

    indexed = {DY: sp.IndexedBase(DY.name)[_T]}
    read_backward = {adjoint(prev(s).name) for s in cell.states}  # carried to step t-1
    for a in derivation.backward:
        if a.of.name != INPUT:  # dx is formed after the loop
            read_backward |= projected(a).free_symbols
    backward, vectors = [], []
    for a in derivation.backward:
        if a.of.name == INPUT:
            continue  # dx is formed after the loop from the kept dz
        expr = projected(a).xreplace(indexed)
        if a.of.name in cell.vectors:
            vectors.append((a.of.name, a.out.name, code.doprint(expr)))
            continue
        text = code.doprint(expr) if expr != 0 else "np.zeros((B, H), dtype=dtype)"
        store = f"{sequence(a.out.name)}[t]" if a.of in affines else None
        backward.append(_statement(a.out.name, text, store, read_backward))

    loads = []
    for v in derivation.cached:
        if v.name in cell.states:
            loads.append(Statement(v.name, f"{sequence(v.name)}[t + 1]"))
        elif v in state_values:
            state = next(s for s in cell.states if prev(s) == v)
            loads.append(Statement(v.name, f"{sequence(state)}[t]"))
        else:
            loads.append(Statement(v.name, f"{sequence(v.name)}[t]"))
    used = set().union(*(a.expr.free_symbols for a in derivation.backward))
    loads = [s for s in loads if sym(s.target) in used]

    x_adjoint = next(a for a in derivation.backward if a.of.name == INPUT)
    dx = code.doprint(sp.Add(*(matmul(sym(sequence(p.source.name)), sym(
        affines[p.affine.out].x_block.var)) for p in x_adjoint.projections)))

    grads = []
    for r in derivation.reductions:
        grads.append((r.param.name, adjoint(r.param.name).name))

    first = next(a for a in affines.values() if a.x_block is not None)
    step_loads = tuple(Statement(prev(s).name, f"{sequence(s)}[t]") for s in cell.states
                       if prev(s) in read_forward)
    plan = Plan(
        cell=cell.name, version=__version__, doc=cell.doc, states=cell.states, params=cell.params,
        shapes=tuple((p, ShapePrinter().doprint(sp.Tuple(*cell.param_shape(p, D, H))))
                     for p in cell.params),
        sizes_from=(first.weight, sum(1 for b in first.blocks if b.input != INPUT)),
        helpers=tuple((e.name, code.helper(e), e.doc) for e in helpers_used(
            [n.expr for n in cell.nodes if not isinstance(n, Affine)])),
        text=_docstring(derivation),
        affines=tuple(affines.values()), forward=tuple(forward), step_loads=step_loads, kept=kept,
        cache=(INPUT,) + tuple(sequence(n) for n in cell.states + kept),
        loads=tuple(loads), backward=tuple(backward), vectors=tuple(vectors),
        carries=tuple((s, next_adjoint(s).name, adjoint(prev(s).name).name) for s in cell.states),
        dx=dx, grads=tuple(grads))
    _check_names(plan, cell)
    return plan


def _docstring(derivation):
    from .document import code_names, parts

    sections, legend = parts(derivation, "text")
    return {"sections": sections, "legend": legend, "names": code_names(derivation)}


def _check_names(plan, cell):
    """Every name the module defines must be distinct from the cell's own and from each other."""
    owner = {}

    def claim(name, what):
        if name in owner and owner[name] != what:
            raise CellError(f"cell {cell.name!r}: the generated name {name!r} ({what}) collides "
                            f"with {owner[name]}; rename that node")
        owner[name] = what

    for name in RESERVED - set(REGISTRY):
        owner[name] = "a name of the generated module"
    for node in cell.nodes:
        claim(node.out.name, "a value of the cell")
    for name in [prev(s).name for s in cell.states] + list(cell.params):
        claim(name, "a value of the cell")
    for a in plan.affines:
        for b in a.blocks:
            if b.var != a.weight:  # a weight that reads one vector is its own block
                claim(b.var, f"the {b.input} block of {a.weight}")
        claim(a.dz_history, f"dz of {a.out} at every step")
        if a.hoisted:
            claim(a.hoisted, f"the x part of {a.out}")
        claim(a.grad, f"the gradient of {a.weight}")
    for name in plan.kept:
        claim(sequence(name), f"{name} at every step")
    for s in plan.states:
        claim(sequence(s), f"{s} at every step")
    for s in plan.backward:
        claim(s.target, f"the gradient of {s.target[1:]}")
    for _, nxt, _ in plan.carries:
        claim(nxt, "a gradient arriving from step t+1")
