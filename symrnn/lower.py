"""lower(derivation) -> Plan: decide the NumPy shape of the computation.

The Plan is what a backend's template renders. Decisions made here (and only here):

- every affine map gets a slot of H columns in one buffer ``Z`` of pre-activations, slots ordered
  so that maps reading the same vectors, and then maps under the same activation, are adjacent;
- the blocks of all weights that read one vector are stacked into one matrix (``fused_a_prev``,
  prepared once per call): one matrix product per vector fills a run of slots;
- the input's products ``x fused_x^T + b`` are one matrix product over a chunk of steps, before
  the time loop; inside the loop only the recurrent products remain;
- adjacent gates under the same activation are activated by one ufunc call, into a buffer ``A``
  whose views carry the seed's names (``Gamma_f = A[:, :H]``); gates whose activation has a tanh
  form (``sigmoid(z) = tanh(z/2)/2 + 1/2``) share one ``np.tanh`` call, the factor inside folded
  into their rows of the prepared weights and bias;
- the forward keeps, per step, exactly the values the backward reads (``Derivation.cached``);
- the backward keeps ``dZ`` for a chunk of steps; the derivative of every gate's activation is
  formed for a block of steps at once (``G``; as many steps as fit in cache), so that inside a
  step the gates' gradients ``dA`` become ``dZ`` in one multiplication; each vector's gradient
  is one matrix product ``dZ[:, run] @ fused_v``; after the chunk, ``dW``, ``db`` and ``dx`` are
  one product or sum per vector.

Every expression is printed by ``printing.CodePrinter``; the names follow ``symbols``.
"""

from dataclasses import dataclass, replace

import sympy as sp

from . import __version__
from .activations import REGISTRY, is_activation
from .cell import INPUT, RESERVED, Affine, CellError
from .derive import DY, Derivation
from .display import code_names, notes, parts
from .printing import CodePrinter, ShapePrinter, helpers_used, matmul
from .symbols import adjoint, next_adjoint, prev, sequence, sym

H, D = sp.Symbol("H"), sp.Symbol("D")
_T = sp.Symbol("t")


@dataclass(frozen=True)
class Slot:
    """The H columns of ``Z`` (and ``A``, ``dZ``) that hold one affine map."""

    affine: str  # z_f
    weight: str  # W_f
    bias: str | None
    cols: str  # "H:2*H"


@dataclass(frozen=True)
class Part:
    """The block of one weight that reads the product's vector: rows ``rows`` of the fused
    matrix are ``weight[:, cols]``."""

    weight: str
    cols: str  # the weight's columns, ":H", or ":" for all
    rows: str  # the fused matrix's rows


@dataclass(frozen=True)
class Product:
    """``Z[:, cols] += vector @ matrix.T``: every affine map in a run of slots that reads
    ``vector``, with their blocks stacked into ``matrix``."""

    vector: str  # a_prev
    series: str  # the array holding the vector at step t at [t]: a_seq, x, Gamma_r_a_prev_seq
    matrix: str  # fused_a_prev
    cols: str  # the run of slots: ":" for all, else "H:3*H"
    parts: tuple[Part, ...]
    grad: str  # dfused_a_prev
    first: int  # the first slot of the run (it has one slot per part)
    size: str = "H"  # the vector's size, as code
    accumulate: bool = False  # an input's product adds to slots another input's product filled


@dataclass(frozen=True)
class Activate:
    """``A[:, cols] = act(Z[:, cols])`` for adjacent gates under one activation, or through one
    ``np.tanh`` for adjacent gates with a tanh form, then ``A[:, c] = scale*A[:, c] + shift``
    for each ``(c, scale, shift)`` in ``after``."""

    function: str  # "sigmoid" (a module helper) or "np.tanh"
    cols: str
    nodes: tuple[tuple[str, str], ...]  # (Gamma_f, "A[:, :H]")
    after: tuple[tuple[str, str, str], ...] = ()  # (":3*H", "1/2", "1/2")
    notes: tuple[str, ...] = ()  # the equations it computes, as comments


@dataclass(frozen=True)
class Statement:
    target: str
    code: str
    store: str | None = None  # where the value is also kept, e.g. "Gamma_f_seq[t]"
    into: str | None = None  # the value computed straight into ``store`` (a ufunc's out=)
    notes: tuple[str, ...] = ()  # the equations it computes, as comments

    @property
    def line(self):
        if self.into is None:
            return f"{self.target} = {self.store + ' = ' if self.store else ''}{self.code}"
        return f"{self.target} = {self.into}" if self.target else self.into


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
    text: dict  # the docstring's equations: "sections", "legend", "names"; "notes": {code
    # name: its equation}, the comments next to the lines that compute it
    width: str  # the columns of Z: "4*H"
    slots: tuple[Slot, ...]
    biases: tuple[str, ...]  # per slot, the bias's code or zeros; () if no slot has a bias
    inside: tuple[tuple[str, str], ...]  # (cols, factor): the tanh form's factor inside, per run
    x_products: tuple[Product, ...]  # before the loop
    x_covers_all: bool  # one x product fills every slot
    products: tuple[Product, ...]  # the recurrent ones, each inside the loop once
    forward: tuple[Product | Activate | Statement, ...]  # inside the loop, in order
    activates: bool  # some gates are activated into A
    step_loads: tuple[Statement, ...]  # previous states read at the top of a forward step
    kept: tuple[str, ...]  # per-step values kept for the backward in X_seq arrays
    scalars: tuple[str, ...]  # the X_seq arrays of per-sample scalars: (T, B, 1), not (T, B, H)
    cache: tuple[str, ...]  # the keys of the cache, each also the name of its array
    loads: tuple[Statement, ...]  # at the top of a backward step
    derivatives: tuple[str, ...]  # G_block = act'(A_block), per activation: per block of steps
    backward: tuple[Statement, ...]  # inside the loop, in order
    vectors: tuple[tuple[str, str, str], ...]  # (p, dp, the per-step contribution to dp)
    vectors_read: tuple[str, ...]  # the elementwise parameters the backward reads
    carries: tuple[tuple[str, str, str], ...]  # (a, da_next, da_prev) for every state
    grads: tuple[tuple[str, str], ...]  # (param, gradient variable)
    # sizes and inputs beyond D, H and x (``sized``: the module reads them; a cell with only D, H
    # and x renders as it always has)
    sized: bool = False
    size_names: tuple[str, ...] = ("D", "H")
    extra_sizes: tuple[str, ...] = ()  # keywords of param_shapes and init_params: ("P",)
    size_reads: tuple[tuple[str, str], ...] = ()  # (size, code reading it off params)
    requires: tuple[tuple[str, str, str], ...] = ()  # (D, H, where): input size D must be H
    inputs: tuple[tuple[str, str], ...] = ()  # (input, its size) for the inputs after x
    widths: tuple[tuple[str, str], ...] = ()  # (state or kept name, its size as code)
    output: str = "H"  # the size of the output state
    input_grads: tuple[tuple[str, str, bool], ...] = (("x", "dx", False),)  # (input, gradient,
    # whether the loop computes elementwise terms of it before the products add theirs)


def _print_size(expr):
    return ShapePrinter().doprint(expr)


def _slice(start, stop, total):
    left = "" if start == 0 else _print_size(start)
    right = "" if sp.expand(stop - total) == 0 else _print_size(stop)
    return f"{left}:{right}"


def _series(name, cell):
    """The array whose [t] is the per-step vector ``name`` at step t: x, a_seq (a_prev), ..."""
    if name in cell.inputs:
        return name
    for s in cell.states:
        if name == prev(s).name:
            return sequence(s)
    if name in cell.states:  # the state's value at this step: [t] of its series from step 1
        return f"{sequence(name)}[1:]"
    return sequence(name)


def _gates(cell):
    """{affine map: its gate}, for the nodes ``n = act(z)`` applied directly to an affine map
    (``Gamma_f = sigmoid(z_f)``); a state is kept in its own array, and so is a value an affine map
    reads (its series for dW), so neither is a gate here."""
    return {n.expr.args[0]: n for n in cell.nodes
            if not isinstance(n, Affine) and is_activation(n.expr)
            and isinstance(n.expr.args[0], sp.Symbol) and n.out.name not in cell.states
            and any(a.out == n.expr.args[0] for a in cell.affines)
            and not any(n.out in a.inputs for a in cell.affines)}


def _order(cell, gates):
    """The affine maps in slot order: same vectors read, then same activation, adjacent."""
    affines = list(cell.affines)

    def activation(a):
        return gates[a.out].expr.func.__name__ if a.out in gates else "~"
    return sorted(affines, key=lambda a: ([v.name for v in a.inputs], activation(a),
                                          affines.index(a)))


def _size_expr(size):
    """A size as a SymPy expression: the symbol H, D, P, or the number 1."""
    return sp.Integer(1) if size == 1 else sp.Symbol(size)


def _width(symbol, cell):
    """The size of a vector as a SymPy expression: H, D, P, or 1."""
    return _size_expr(cell.size(symbol))


def _columns(a, cell):
    """For each vector affine ``a`` reads, its columns in the weight (":H", "H:", ...)."""
    names = [v.name for v in a.inputs]
    sizes = [_width(v, cell) for v in a.inputs]
    start, cols = sp.Integer(0), {}
    for name, size in zip(names, sizes, strict=True):
        stop = start + size
        cols[name] = ":" if len(names) == 1 else _slice(start, stop, sp.Add(*sizes))
        start = stop
    return cols


def _products(order, cell, vector, start):
    """The runs of adjacent slots whose affine maps read ``vector``, one Product each;
    ``start[k]``: the first column of slot k (``start[-1]``: the width of Z)."""
    runs, current = [], []
    for k, a in enumerate(order):
        if any(v.name == vector for v in a.inputs):
            if current and current[-1][0] != k - 1:
                runs.append(current)
                current = []
            current.append((k, a))
        elif current:
            runs.append(current)
            current = []
    if current:
        runs.append(current)
    products = []
    for i, run in enumerate(runs):
        first, last = run[0][0], run[-1][0]
        suffix = f"_{i + 1}" if len(runs) > 1 else ""
        parts = tuple(Part(a.weight.name, _columns(a, cell)[vector],
                           _slice(start[k] - start[first], start[k + 1] - start[first],
                                  start[last + 1] - start[first]))
                      for k, a in run)
        products.append(Product(vector, _series(vector, cell), f"fused_{vector}{suffix}",
                                _slice(start[first], start[last + 1], start[-1]), parts,
                                f"dfused_{vector}{suffix}", first,
                                _print_size(_width(sym(vector), cell))))
    return products


def _statement(target, expr, store, read, code):
    """``target = expr``, also kept in ``store`` (computed straight into it where a ufunc's out=
    can); with no local name if nothing reads it."""
    text = code.doprint(expr)
    into = code.into(expr, store) if store is not None else None
    if store is not None and sym(target) not in read:
        return Statement(store, text) if into is None else Statement("", text, store, into)
    return Statement(target, text, store, into)


def _runs(slots):
    """Sorted slot numbers cut into runs of adjacent ones."""
    runs = []
    for k in slots:
        if runs and runs[-1][-1] == k - 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def lower(derivation: Derivation) -> Plan:
    cell = derivation.cell
    code = CodePrinter()
    gates = _gates(cell)
    order = _order(cell, gates)
    slot_of = {a.out: k for k, a in enumerate(order)}
    start = [sp.Integer(0)]
    for a in order:
        start.append(start[-1] + _width(a.out, cell))
    width = start[-1]

    def cols(k):
        return _slice(start[k], start[k + 1], width)

    def view(array, k):
        return array if cols(k) == ":" else f"{array}[:, {cols(k)}]"

    vectors_read = []
    for a in order:
        vectors_read += [v.name for v in a.inputs if v.name not in vectors_read]
    x_products, filled = [], set()
    for v in cell.inputs:
        for p in _products(order, cell, v, start):
            run = set(range(p.first, p.first + len(p.parts)))
            x_products.append(replace(p, accumulate=bool(run & filled)))
            filled |= run
    x_products = tuple(x_products)
    products = {v: _products(order, cell, v, start) for v in vectors_read
                if v not in cell.inputs}
    at_step = {sym(v): sp.IndexedBase(v)[_T] for v in cell.inputs}  # x read elementwise: x[t]

    by_slot = {slot_of[z]: gate.out for z, gate in gates.items()}  # slot -> its gate
    direct = {gate.out: slot_of[z] for z, gate in gates.items()}  # gate -> its slot
    read_by_others = set().union(*(set(n.inputs) if isinstance(n, Affine) else
                                   n.expr.free_symbols for n in cell.nodes if n.out not in direct))

    def entry(k):
        return REGISTRY[gates[order[k].out].expr.func.__name__]

    # A gate is plain when only its activation reads its pre-activation: then dz = dGamma act'.
    adjoints = {a.of: a for a in derivation.backward}
    plain = {k for k, gate in by_slot.items() if order[k].out not in read_by_others
             and not adjoints[order[k].out].projections and entry(k).from_output
             and sp.expand(adjoints[order[k].out].expr
                           - entry(k).grad(gate, None) * adjoint(gate.name)) == 0}

    # gates under one activation, adjacent and reading the same vectors: one ufunc call; adjacent
    # plain groups with a tanh form: one np.tanh call (the factor inside folded into the weights)
    groups = []
    for k in sorted(by_slot):
        same = (groups and groups[-1][-1] == k - 1 and entry(k - 1) is entry(k)
                and order[k - 1].inputs == order[k].inputs and (k - 1 in plain) == (k in plain))
        if same:
            groups[-1].append(k)
        else:
            groups.append([k])

    def through_tanh(group):
        return group[0] in plain and entry(group[0]).tanh_form is not None

    merged = []
    for group in groups:
        if (merged and through_tanh(group) and through_tanh(merged[-1][-1])
                and merged[-1][-1][-1] == group[0] - 1
                and order[group[0] - 1].inputs == order[group[0]].inputs):
            merged[-1].append(group)
        else:
            merged.append([group])

    def span(group):
        return _slice(start[group[0]], start[group[-1] + 1], width)

    def activation_op(run):
        nodes = tuple((by_slot[k].name, view("A", k)) for group in run for k in group)
        whole = _slice(start[run[0][0]], start[run[-1][-1] + 1], width)
        if through_tanh(run[0]):
            after = tuple((span(g), code.doprint(entry(g[0]).tanh_form[1]),
                           code.doprint(entry(g[0]).tanh_form[2])) for g in run
                          if entry(g[0]).tanh_form[1:] != (1, 0))
            return Activate("np.tanh", whole, nodes, after)
        function = entry(run[0][0]).name
        return Activate(function if entry(run[0][0]).numpy is not None else f"np.{function}",
                        whole, nodes)

    inside = tuple((span(g), code.doprint(entry(g[0]).tanh_form[0]))
                   for run in merged for g in run
                   if through_tanh(g) and entry(g[0]).tanh_form[0] != 1)

    text = _docstring(derivation)

    def noted(op, *names):
        return replace(op, notes=tuple(text["notes"][n] for n in names if n in text["notes"]))

    state_values = {prev(s) for s in cell.states} | {sym(s) for s in cell.states}
    kept = tuple(v.name for v in derivation.cached
                 if v not in state_values and v not in direct and v not in slot_of)
    read_forward = set().union(*(n.expr.free_symbols if not isinstance(n, Affine)
                                 else set(n.inputs) for n in cell.nodes))
    forward, done, activated = [], set(), set()
    for node in derivation.forward:
        if isinstance(node, Affine):
            for v in node.inputs:
                if v.name not in cell.inputs and v.name not in done:
                    forward += products[v.name]
                    done.add(v.name)
            if node.out in read_by_others:  # read by a node other than its own gate
                forward.append(noted(Statement(node.out.name, view("Z", slot_of[node.out])),
                                     node.out.name))
        elif node.out in direct:
            i = next(i for i, run in enumerate(merged) if any(direct[node.out] in g for g in run))
            if i not in activated:  # at the first of its gates to be computed
                op = activation_op(merged[i])
                forward.append(noted(op, *(name for name, _ in op.nodes)))
                activated.add(i)
        else:
            forward.append(noted(_statement(node.out.name, node.expr.xreplace(at_step),
                                            _store(node.out, cell, kept), read_forward, code),
                                 node.out.name))

    def projected(a):
        terms = [a.expr]
        for product in products.get(a.of.name, ()):
            source = "dZ" if product.cols == ":" else f"dZ[:, {product.cols}]"
            terms.append(matmul(sym(source), sym(product.matrix)))
        return sp.Add(*terms)

    indexed = {DY: sp.IndexedBase(DY.name)[_T], **at_step}
    read_backward = {adjoint(prev(s).name) for s in cell.states}  # carried to step t-1
    for a in derivation.backward:  # dx is formed after the loop, a plain gate's dz from dA
        if a.of.name in cell.inputs:
            read_backward |= a.expr.free_symbols
        elif not (a.of in slot_of and slot_of[a.of] in plain):
            read_backward |= projected(a).free_symbols
    backward, vectors, pending = [], [], []

    def flush():
        """dZ = dA G for the plain gates whose dA is complete, one multiplication per run."""
        for run in _runs(sorted(pending)):
            whole = _slice(start[run[0]], start[run[-1] + 1], width)
            views = [a if whole == ":" else f"{a}[:, {whole}]" for a in ("dA", "G", "dZ")]
            backward.append(noted(Statement("", "", into="np.multiply({}, {}, out={})".format(
                *views)), *(adjoint(order[k].out.name).name for k in run)))
            backward.extend(Statement(adjoint(order[k].out.name).name, view("dZ", k))
                            for k in run if adjoint(order[k].out.name) in read_backward)
        pending.clear()

    pending_reads, input_grads = set(), []
    for a in derivation.backward:
        if a.of.name in cell.inputs:  # dx: its elementwise terms here, its products after the loop
            input_grads.append((a.of.name, a.out.name, a.expr != 0))
            if a.expr != 0:
                if pending and any(s.name.startswith("dZ") or s in pending_reads
                                   for s in a.expr.free_symbols):
                    flush()
                backward.append(noted(Statement(f"{a.out.name}[t]",
                                                code.doprint(a.expr.xreplace(indexed))),
                                      a.out.name))
            continue
        expr = projected(a).xreplace(indexed)
        if a.of in slot_of and slot_of[a.of] in plain:
            pending.append(slot_of[a.of])
            pending_reads.add(a.out)
            continue
        if pending and any(s.name.startswith("dZ") or s in pending_reads
                           for s in expr.free_symbols):
            flush()
        if a.of.name in cell.vectors:
            vectors.append((a.of.name, a.out.name, code.doprint(expr)))
            continue
        if expr == 0:
            expr = sp.Symbol(f"np.zeros((B, {_print_size(_width(a.of, cell))}), dtype=dtype)")
        store = None  # gate gradients go into dA, pre-activation gradients into dZ
        if a.of in direct and direct[a.of] in plain:
            store = "dA[:]" if cols(direct[a.of]) == ":" else view("dA", direct[a.of])
        elif a.of in slot_of:
            store = "dZ[:]" if cols(slot_of[a.of]) == ":" else view("dZ", slot_of[a.of])
        backward.append(noted(_statement(a.out.name, expr, store, read_backward, code),
                              a.out.name))
    flush()

    used = set().union(*(a.expr.free_symbols for a in derivation.backward))
    loads = []
    for v in derivation.cached:
        if v not in used:
            continue
        if v.name in cell.states:
            loads.append(Statement(v.name, f"{sequence(v.name)}[t + 1]"))
        elif v in state_values:
            state = next(s for s in cell.states if prev(s) == v)
            loads.append(Statement(v.name, f"{sequence(state)}[t]"))
        elif v in direct:
            loads.append(Statement(v.name, view("A", direct[v])))
        elif v in slot_of:
            loads.append(Statement(v.name, view("Z", slot_of[v])))
        else:
            loads.append(Statement(v.name, f"{sequence(v.name)}[t]"))

    derivatives = []
    for g in groups:
        if g[0] in plain:
            at = "" if span(g) == ":" else f"[:, :, {span(g)}]"
            grad = entry(g[0]).grad(sym(f"A_block{at}"), None)
            derivatives.append(code.into(grad, f"G_block{at}")
                               or f"G_block[{at[1:-1] or ':'}] = {code.doprint(grad)}")
    first = next(a for a in order if sym(INPUT) in a.inputs)
    keep_Z = any(v in slot_of for v in derivation.cached)
    keep_A = any(v in direct for v in derivation.cached) or bool(derivatives)  # G from A
    step_loads = tuple(Statement(prev(s).name, f"{sequence(s)}[t]") for s in cell.states
                       if prev(s) in read_forward)
    plan = Plan(
        cell=cell.name, version=__version__, doc=cell.doc, states=cell.states, params=cell.params,
        shapes=tuple((p, _print_size(sp.Tuple(*cell.param_shape(p, D, H, **{
            n: sp.Symbol(n) for n in cell.extra_sizes})))) for p in cell.params),
        sizes_from=(first.weight.name, sum(1 for v in first.inputs if v.name != INPUT)),
        helpers=tuple((e.name, code.helper(e), e.doc) for e in helpers_used(
            [n.expr for n in cell.nodes if not isinstance(n, Affine) and n.out not in direct]
            + [gates[order[g[0]].out].expr for g in groups if not through_tanh(g)]
            + [a.expr for a in derivation.backward])),  # softplus' = sigmoid(z)
        text=text, width=_print_size(width),
        slots=tuple(Slot(a.out.name, a.weight.name, a.bias.name if a.bias is not None else None,
                         cols(k)) for k, a in enumerate(order)),
        biases=(tuple(f'params["{a.bias.name}"]' if a.bias is not None
                      else f"np.zeros({_print_size(_width(a.out, cell))}, dtype)" for a in order)
                if any(a.bias is not None for a in order) else ()),
        inside=inside, x_products=x_products,
        x_covers_all=len(x_products) == 1 and x_products[0].cols == ":",
        products=tuple(p for v in vectors_read if v not in cell.inputs for p in products[v]),
        forward=tuple(forward), activates=bool(groups), step_loads=step_loads, kept=kept,
        scalars=tuple(sequence(n) for n in kept if n in cell.scalars),
        cache=cell.inputs + tuple(sequence(n) for n in cell.states + kept)
        + (("Z_seq",) if keep_Z else ()) + (("A_seq",) if keep_A else ()),
        loads=tuple(loads), derivatives=tuple(derivatives), backward=tuple(backward),
        vectors=tuple(vectors), vectors_read=tuple(v for v in cell.vectors if sym(v) in used),
        carries=tuple((s, next_adjoint(s).name, adjoint(prev(s).name).name) for s in cell.states),
        grads=tuple((r.param.name, adjoint(r.param.name).name) for r in derivation.reductions),
        sized=cell.sized,
        size_names=cell.size_names, extra_sizes=cell.extra_sizes, size_reads=_size_reads(cell),
        requires=cell.requires,
        inputs=tuple((v, _print_size(_width(sym(v), cell))) for v in cell.inputs[1:]),
        widths=tuple((n, _print_size(_width(sym(n), cell)))
                     for n in cell.states + kept + cell.vectors),
        output=_print_size(_width(sym(cell.states[0]), cell)),
        input_grads=tuple(input_grads))
    _check_names(plan, cell)
    return plan


def _size_reads(cell):
    """How the module reads each named size off the parameters: ``(size, code)`` in an order
    where each code uses only sizes read before it (``("D", 'params["W_f"].shape[1] - H')``)."""
    reads = []
    for size, p, axis, times, rest in cell.size_reads():
        code = f'params["{p}"].shape[{axis}]' + (
            "" if rest == 0 else f" - ({_print_size(rest)})" if rest.is_Add
            else f" - {_print_size(rest)}")
        reads.append((size, code if times == 1 else f"({code}) // {times}"))
    return tuple(reads)


def _store(symbol, cell, kept):
    if symbol.name in cell.states:
        return f"{sequence(symbol.name)}[t + 1]"
    return f"{sequence(symbol.name)}[t]" if symbol.name in kept else None


def _docstring(derivation):
    sections, legend = parts(derivation, "text")
    return {"sections": sections, "legend": legend, "names": code_names(derivation),
            "notes": notes(derivation)}


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
    for product in plan.x_products + plan.products:
        claim(product.matrix, f"the blocks that read {product.vector}")
        claim(product.grad, f"the gradient of the blocks that read {product.vector}")
    for slot in plan.slots:
        claim(adjoint(slot.weight).name, f"the gradient of {slot.weight}")
    for name in plan.kept:
        claim(sequence(name), f"{name} at every step")
    for s in plan.states:
        claim(sequence(s), f"{s} at every step")
    for s in plan.backward:
        claim(s.target, f"the gradient of {s.target[1:]}")
    for _, nxt, _ in plan.carries:
        claim(nxt, "a gradient arriving from step t+1")
