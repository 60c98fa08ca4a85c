"""The cell IR: a recurrent cell's one-step equations, and the builder that declares them.

A cell has inputs (``x``, a D-vector, first; others declared with their sizes, e.g. a time gap
``dt`` of size 1), states (H-vectors unless declared otherwise; the first is the output, e.g.
``a``), parameters, and two kinds of node:

- ``Affine``: ``z = W [v1, v2, ...] + b``, a weight matrix applied to a concatenation of vectors
  (``x``, a previous state ``a_prev`` or an elementwise node); ``b`` may be absent;
- ``Elementwise``: ``n = expr``, any SymPy expression over vectors treated as scalars: the
  registered activations, SymPy's own functions of ``activations.FUNCTIONS``, rational powers.
  A reduction ``mu = mean(v)`` is an elementwise node whose expression is ``mean`` of one vector
  (``reductions``): its value is a per-sample scalar (size 1), and so is any node computed from
  per-sample scalars alone (``Cell.scalars``); where an H-vector expression reads one, it
  broadcasts over the units.

Built-in cells and user cells use the same builder::

    cell = CellBuilder("rnn", states=("a",))
    a_prev, x = cell.prev("a"), cell.x
    cell.let("a", tanh(cell.affine("W_a", [a_prev, x], "b_a")))
    rnn = cell.build()

Every vector has a size (``_infer_sizes``): x has D, a state H, unless ``sizes`` declares
otherwise (``CellBuilder(..., sizes={"a": "P"})``); an elementwise equation's operands share its
size (per-sample scalars broadcast); an affine map's output takes the size its use requires.

``build()`` validates the cell (undefined or duplicate names, a state never updated, cycles,
two sizes in one equation, unsupported functions, names that are not Python identifiers or are
reserved) and raises ``CellError`` with one clear line.
"""

import dataclasses
import functools
import keyword
from dataclasses import dataclass

import sympy as sp

from .activations import ALLOWED, FUNCTIONS, REGISTRY, is_activation
from .reductions import LAYER_NORM_EPS, layer_norm, mean
from .symbols import prev, sym

INPUT = "x"

# Names the generated module uses for itself; a cell may not take them.
RESERVED = frozenset(
    {"np", "params", "grads", "cache", "x", "dx", "y", "dy", "t", "T", "B", "D", "H", "dtype",
     "state", "state0", "state_T", "dstate0", "dstate_T", "rng", "bound", "name", "shape",
     "forward", "backward", "step", "init_params", "param_shapes", "CELL", "STATES", "PARAMS",
     "K", "t0", "t1", "steps", "bias", "db", "Z", "A", "dZ", "Z_seq", "A_seq", "dZ_seq",
     "dZ_chunk", "workspace", "token", "inside", "factor", "dA", "G", "G_seq", "A_block",
     "G_block", "L", "s0"}
) | frozenset(REGISTRY)


# Names a size may not take beyond RESERVED: the generated modules' other local names (a size
# is a local variable of forward and backward, and an argument of the compiled kernels).
_MODULE_LOCALS = frozenset({"b", "j", "real", "gemm", "key", "width", "widths", "shapes", "value",
                            "missing", "extra", "sizes", "i", "s", "keys", "W", "v"})


class CellError(ValueError):
    """A cell declaration that cannot be built; the message says what and where."""


@dataclass(frozen=True)
class Affine:
    """``out = weight [inputs...] + bias`` (bias may be None)."""

    out: sp.Symbol
    weight: sp.Symbol
    inputs: tuple[sp.Symbol, ...]
    bias: sp.Symbol | None


@dataclass(frozen=True)
class Elementwise:
    """``out = expr``, elementwise over H-vectors."""

    out: sp.Symbol
    expr: sp.Expr


@dataclass(frozen=True)
class Cell:
    name: str
    states: tuple[str, ...]  # states[0] is the output state
    params: tuple[str, ...]  # in declaration order
    vectors: tuple[str, ...]  # the params used elementwise (shape (their size,))
    nodes: tuple[Affine | Elementwise, ...]  # in an order where every use follows its definition
    doc: str = ""
    made: frozenset[str] = frozenset()  # nodes the builder made itself (tanh_c for tanh(c))
    scalars: frozenset[str] = frozenset()  # the nodes and inputs of size 1 (per-sample scalars)
    inputs: tuple[str, ...] = (INPUT,)  # the per-step inputs; x first
    sizes: tuple[tuple[str, str | int], ...] = ()  # (value, its size) for every vector
    requires: tuple[tuple[str, str, str], ...] = ()  # (D, H, where): input size D must be H

    @property
    def x(self):
        return sym(INPUT)

    def prev(self, state):
        return prev(state)

    @property
    def affines(self):
        return tuple(n for n in self.nodes if isinstance(n, Affine))

    @functools.cached_property
    def _sizes(self):
        return dict(self.sizes)

    @property
    def sized(self):
        """Whether the cell steps outside x of D units and every other vector of H (or 1, for a
        mean and what is computed from means alone): an input beyond x, a vector of another size,
        a requirement (D = H) or a mean over other than H units. Such a cell's derivation states
        its sizes and its module reads them; any other renders as it always has."""
        means = [n.expr.args[0] for n in self.nodes if not isinstance(n, Affine)
                 and isinstance(n.expr, mean)]
        computed = set(self.scalars) - set(self.inputs)
        return bool(len(self.inputs) > 1 or self.requires
                    or any(size != ("D" if v == INPUT else "H") for v, size in self.sizes
                           if v not in computed)
                    or any(self.size(v) != "H" for v in means))

    @property
    def size_names(self):
        """The named sizes of the cell's vectors: D and H first, then the others sorted."""
        named = {size for _, size in self.sizes if size != 1} | {"D", "H"}
        return ("D", "H") + tuple(sorted(named - {"D", "H"}))

    @property
    def extra_sizes(self):
        """The named sizes beyond D and H (``P`` for a projection): keywords of init_params."""
        return self.size_names[2:]

    def size(self, symbol):
        """1 for a per-sample scalar, else the vector's size: a name ("D" for x, "H" for a
        state unless declared otherwise, "P", ...). The gradients arriving from outside a step
        (``dy``, ``da_next``) have their state's size."""
        name = symbol.name if isinstance(symbol, sp.Symbol) else symbol
        if name in self.scalars:
            return 1
        sizes = self._sizes
        if name in sizes:
            return sizes[name]
        if name == "dy":
            return sizes.get(self.states[0], "H")
        if name.startswith("d") and name.endswith("_next") and name[1:-5] in self.states:
            return sizes.get(name[1:-5], "H")
        if name.startswith("d") and name[1:] in sizes:  # an adjoint has its value's size
            return 1 if name[1:] in self.scalars else sizes[name[1:]]
        return "D" if name == INPUT else "H"

    def param_shape(self, name, D, H, **extra):
        """The shape of parameter ``name``, with D, H (and the extra sizes, ``P=...``) numbers
        or SymPy symbols."""
        values = {"D": D, "H": H, **extra}

        def of(symbol):
            size = self.size(symbol)
            return 1 if size == 1 else values[size]

        for node in self.affines:
            if node.weight.name == name:
                width = [of(v) for v in node.inputs]
                if all(isinstance(w, int) for w in width):
                    return (of(node.out), sum(width))
                return (of(node.out),
                        sp.Add(*width, evaluate=False) if len(width) > 1 else width[0])
            if node.bias is not None and node.bias.name == name:
                return (of(node.out),)
        if name in self.vectors:
            return (of(sym(name)),)
        raise KeyError(name)

    def size_reads(self):
        """How each named size is read off the parameters' shapes, in an order where each uses
        only sizes read before it: ``(size, param, axis, times, rest)`` with ``shape[axis] =
        times*size + rest`` (``("D", "W_f", 1, 1, H)``). The one rule for the generated modules
        (``lower``) and for ``sizes_of``; CellError if a size is never alone beside known ones."""
        names = {n: sp.Symbol(n) for n in self.size_names}
        dims = [(p, axis, sp.sympify(e)) for p in self.params for axis, e in enumerate(
            self.param_shape(p, names["D"], names["H"], **{n: names[n]
                                                           for n in self.extra_sizes}))]
        reads, known = [], set()
        while len(known) < len(names):
            found = [(len(e.free_symbols), p, axis, e) for p, axis, e in dims
                     if len(e.free_symbols - known) == 1]
            if not found:
                missing = ", ".join(sorted(n for n, s in names.items() if s not in known))
                raise CellError(f"cell {self.name!r}: the sizes {missing} cannot be read off "
                                f"the parameters' shapes (none is alone beside known sizes in "
                                f"one)")
            _, p, axis, e = min(found, key=lambda f: f[0])
            (size,) = e.free_symbols - known
            times = e.coeff(size)
            reads.append((size.name, p, axis, times, e - times * size))
            known.add(size)
        return tuple(reads)

    def sizes_of(self, params):
        """``{"D": ..., "H": ..., "P": ...}`` read off the shapes of ``params`` (arrays or
        tensors by name), every one checked; ValueError naming the parameter otherwise."""
        names = {n: sp.Symbol(n) for n in self.size_names}
        shapes = {p: self.param_shape(p, names["D"], names["H"], **{
            n: names[n] for n in self.extra_sizes}) for p in self.params}
        for p, shape in shapes.items():  # the number of axes first, so a bad one is named
            if p not in params or len(params[p].shape) != len(shape):
                raise ValueError(f"params[{p!r}]: expected a {len(shape)}-D array, got "
                                 f"{tuple(params[p].shape) if p in params else 'nothing'}")
        found = {}

        def known(e):
            return sp.sympify(e).xreplace({names[n]: sp.Integer(v) for n, v in found.items()})

        for size, p, axis, times, rest in self.size_reads():
            found[size] = (int(params[p].shape[axis]) - int(known(rest))) // int(times)
        for p, shape in shapes.items():
            want = tuple(int(known(e)) for e in shape)
            if p not in params or tuple(params[p].shape) != want:
                raise ValueError(f"params[{p!r}]: expected shape {want}, got "
                                 f"{tuple(params[p].shape) if p in params else 'nothing'}")
        for d, h, where in self.requires:
            if found[d] != found[h]:
                raise ValueError(f"{d} = {found[d]} and {h} = {found[h]} differ, but {where} "
                                 f"adds them elementwise: the cell needs {d} = {h}")
        return found


class CellBuilder:
    """Declares a cell equation by equation; ``build()`` validates it and returns a ``Cell``."""

    def __init__(self, name, *, states=("a",), inputs=(INPUT,), sizes=None, doc=""):
        self.name, self.states, self.doc = name, tuple(states), doc
        self.inputs, self.sizes = tuple(inputs), dict(sizes or {})
        self._nodes = []
        self._params = []
        self._vectors = []
        self._by_expr = {}  # activation application -> the node caching it
        self._made = set()

    @property
    def x(self):
        return sym(INPUT)

    def input(self, name):
        """A per-step input declared in ``inputs`` (``x`` is ``cell.x``), e.g. a time gap."""
        if name not in self.inputs:
            raise CellError(f"cell {self.name!r}: {name!r} is not an input (inputs: "
                            f"{', '.join(self.inputs)})")
        return sym(name)

    def prev(self, state):
        """The state's value at the previous step (``a_prev``, seed ``a^{<t-1>}``)."""
        if state not in self.states:
            raise CellError(f"cell {self.name!r}: {state!r} is not a state (states: "
                            f"{', '.join(self.states)})")
        return prev(state)

    def param(self, name):
        """Declare an elementwise parameter vector of shape (H,), e.g. a peephole weight."""
        self._params.append(name)
        self._vectors.append(name)
        return sym(name)

    def affine(self, weight, inputs, bias=None):
        """Declare ``z = W [inputs...] + b`` and return ``z`` (``W_f`` gives ``z_f``)."""
        inputs = [self._as_symbol(v, f"{_affine_out(weight)}_in{k}") for k, v in enumerate(inputs)]
        if not inputs:
            raise CellError(f"cell {self.name!r}: affine map {weight} reads no vectors")
        out = sym(_affine_out(weight))
        self._params += [weight] + ([bias] if bias is not None else [])
        self._nodes.append(Affine(out, sym(weight), tuple(inputs),
                                  sym(bias) if bias is not None else None))
        return out

    def let(self, name, expr):
        """Declare ``name = expr`` (elementwise) and return its symbol; a state name updates it."""
        expr = sp.sympify(expr)  # a SymPy object already; only turns Python numbers into SymPy's
        expr = expr.xreplace({f: sp.Rational(str(f)) for f in expr.atoms(sp.Float)})
        # every value is real: SymPy's re(u) (|exp(u)| becomes exp(re(u))) is u, im(u) is 0
        expr = expr.replace(sp.re, lambda u: u).replace(sp.im, lambda u: sp.S.Zero)
        expr = self._cache_activations(expr, name, top=True)
        self._nodes.append(Elementwise(sym(name), expr))
        return sym(name)

    def mean(self, v):
        """``(1/H) sum_j v_j``, a per-sample scalar (``symrnn.mean``, usable in any equation)."""
        return mean(v)

    def layer_norm(self, v, eps=LAYER_NORM_EPS):
        """``v`` normalised over its units (``symrnn.layer_norm``, usable in any equation)."""
        return layer_norm(v, eps)

    def build(self) -> Cell:
        cell = Cell(self.name, self.states, tuple(self._params), tuple(self._vectors),
                    tuple(self._nodes), self.doc, frozenset(self._made), inputs=self.inputs)
        _validate(cell)
        cell = dataclasses.replace(cell, nodes=_ordered(cell))
        return _infer_sizes(cell, self.sizes)

    # -- helpers ---------------------------------------------------------------------------------

    def _as_symbol(self, value, fallback):
        """An affine input: a symbol as it is, an expression bound to its own node (one node
        for the same expression read by several affine maps)."""
        value = sp.sympify(value)
        if isinstance(value, sp.Symbol):
            return value
        if value not in self._by_expr:
            if isinstance(value, sp.Mul) and all(isinstance(f, sp.Symbol) for f in value.args):
                fallback = "_".join(f.name for f in value.args)  # Gamma_r*a_prev: Gamma_r_a_prev
            self._by_expr[value] = self._make(self._fresh(fallback), value)
        return self._by_expr[value]

    def _cache_activations(self, expr, lhs, top):
        """Give every activation application below the top of an equation a node of its own,
        and every activation argument that is not a symbol a node of its own (its pre-activation
        ``z_<name>``), so the backward forms the activation's derivative once. A mean is a node
        of its own wherever it is (of a symbol: a node its argument, if need be); a layer norm
        is expanded into its equations."""
        if not expr.args:
            return expr
        if isinstance(expr, layer_norm):
            return self._layer_norm(expr, lhs)
        args = [self._cache_activations(a, lhs, top=False) for a in expr.args]
        expr = expr.func(*args) if args != list(expr.args) else expr
        if isinstance(expr, mean):
            arg = expr.args[0]
            if not isinstance(arg, sp.Symbol):
                expr = mean(self._make(self._fresh(f"{lhs}_in"), arg))
            if top:
                return expr
            if expr not in self._by_expr:
                self._by_expr[expr] = self._make(self._fresh(f"mean_{expr.args[0].name}"), expr)
            return self._by_expr[expr]
        if not is_activation(expr):
            return expr
        if top:
            arg = expr.args[0]
            return (expr if isinstance(arg, sp.Symbol)
                    else expr.func(self._make(self._fresh(f"z_{lhs}"), arg)))
        if expr not in self._by_expr:
            arg, act = expr.args[0], expr.func.__name__
            name = f"{act}_{arg.name if isinstance(arg, sp.Symbol) else lhs}"
            self._by_expr[expr] = self._make(self._fresh(name), expr)
        return self._by_expr[expr]

    def _layer_norm(self, expr, lhs):
        """``layer_norm(v, eps)`` as its equations: ``mu_k = mean(v)``,
        ``sigma_k = sqrt(mean((v - mu_k)**2) + eps)``, ``vhat = (v - mu_k) / sigma_k``, with k
        the vector's own label (``f`` for ``z_f``)."""
        v, eps = self._cache_activations(expr.args[0], lhs, top=False), LAYER_NORM_EPS
        if len(expr.args) > 1:
            eps = sp.sympify(expr.args[1])
            if not (eps.is_Rational and eps > 0):
                raise CellError(f"cell {self.name!r}: layer_norm's eps must be a positive "
                                f"number, got {eps} (in the equation of {lhs})")
        if not isinstance(v, sp.Symbol):
            v = self._make(self._fresh(f"{lhs}_in"), v)
        label = v.name[2:] if v.name.startswith("z_") else v.name
        if label != v.name and label in self.states:  # W_c's z_c beside a state c: mu_z_c
            label = v.name
        mu = self.let(self._fresh(f"mu_{label}"), mean(v))
        sigma = self.let(self._fresh(f"sigma_{label}"), sp.sqrt(mean((v - mu) ** 2) + eps))
        hat = f"zhat_{label}" if v.name.startswith("z_") else f"{v.name}_hat"
        return self.let(self._fresh(hat), (v - mu) / sigma)

    def _fresh(self, name):
        """``name``, or ``name_2``, ``name_3``, ... if a node, parameter or affine map has it."""
        taken = ({n.out.name for n in self._nodes} | set(self._params) | set(self.states)
                 | {prev(s).name for s in self.states})
        return next(n for n in [name] + [f"{name}_{k}" for k in range(2, len(taken) + 3)]
                    if n not in taken)

    def _make(self, name, expr):
        """A node the builder makes itself; shown as the expression it stands for."""
        self._made.add(name)
        return self.let(name, expr)


def _affine_out(weight):
    return "z_" + (weight[2:] if weight.startswith("W_") else weight)


def _uses(node):
    if isinstance(node, Affine):
        return set(node.inputs)
    return node.expr.free_symbols


def _ordered(cell):
    """The nodes in dependency order (stable); raises on a cycle within one step."""
    name, nodes = cell.name, cell.nodes
    defined = {n.out: n for n in nodes}
    done, order, visiting = set(), [], []

    def visit(node):
        if node.out in done:
            return
        if node.out in visiting:
            cycle = visiting[visiting.index(node.out):] + [node.out]
            raise CellError(f"cell {name!r}: cyclic dependency within one step: "
                            + " -> ".join(s.name for s in cycle)
                            + " (use the previous step's value, e.g. a_prev)")
        visiting.append(node.out)
        for used in sorted(_uses(node), key=lambda s: s.name):
            if used in defined:
                visit(defined[used])
        visiting.pop()
        done.add(node.out)
        order.append(node)

    for node in nodes:
        visit(node)
    return tuple(order)


def _check_name(cell, name, what):
    if not name.isidentifier() or keyword.iskeyword(name):
        raise CellError(f"cell {cell.name!r}: {what} name {name!r} is not a Python identifier")
    if name.startswith("_"):
        raise CellError(f"cell {cell.name!r}: {what} name {name!r} may not start with '_'")
    if (name in RESERVED or (what == "input" and name != INPUT and (
            name in RESERVED or f"d{name}" in RESERVED))) and not (
            what == "input" and name == INPUT):
        raise CellError(f"cell {cell.name!r}: {what} name {name!r} is reserved by the generated "
                        f"module")


def _check_expr(cell, node, allowed):
    for sub in sp.preorder_traversal(node.expr):
        if (isinstance(sub, sp.Function) and not is_activation(sub)
                and not isinstance(sub, ALLOWED + (mean,))):
            raise CellError(f"cell {cell.name!r}: unsupported function {sub.func.__name__!r} in "
                            f"the equation of {node.out.name}; known: "
                            f"{', '.join(sorted(REGISTRY) + sorted(FUNCTIONS))}, mean, "
                            f"layer_norm")
        if isinstance(sub, sp.Pow) and not sub.exp.is_Rational:
            raise CellError(f"cell {cell.name!r}: power with a non-numeric exponent in the "
                            f"equation of {node.out.name}: {sub}")
        if not isinstance(sub, (sp.Symbol, sp.Number, sp.Add, sp.Mul, sp.Pow, sp.Function)
                          + ALLOWED):
            raise CellError(f"cell {cell.name!r}: unsupported expression {sub} in the equation "
                            f"of {node.out.name}")
    for used in sorted(node.expr.free_symbols, key=lambda s: s.name):
        if used not in allowed:
            raise CellError(f"cell {cell.name!r}: unknown symbol {used.name!r} in the equation "
                            f"of {node.out.name}")


def _what(cell, node):
    """A node as an error message names it."""
    if isinstance(node, Affine):
        return f"the output of the affine map {node.weight.name}"
    if node.out.name in cell.made:
        return f"a node symrnn made for {node.expr}"
    return "an equation's target"


def _infer_sizes(cell, declared):
    """The cell with the size of every vector (``Cell.sizes``), its per-sample scalars
    (``Cell.scalars``) and what it requires of the input sizes (``Cell.requires``).

    x has size D and a state H unless ``declared`` says otherwise; another input must be
    declared. A value computed from per-sample scalars alone (a mean, an input of size 1) is one;
    every other operand of an elementwise equation has the equation's size; an affine map's output
    takes the size its use requires (H if nothing does). Two different sizes in one equation are
    a contradiction, unless one is an input's size (D): the module then requires it to equal
    the other (a highway ``h = r*c + (1 - r)*x`` needs D = H)."""
    name = cell.name
    values = list(cell.inputs) + list(cell.states) + [prev(s).name for s in cell.states]
    values += [n.out.name for n in cell.nodes if n.out.name not in cell.states] + list(cell.vectors)
    for v, size in declared.items():
        if v not in values:
            raise CellError(f"cell {name!r}: sizes names {v!r}, which is not an input, state, "
                            f"parameter or equation target of the cell")
        if not (size == 1 or (isinstance(size, str) and size.isidentifier())) or size is True:
            raise CellError(f"cell {name!r}: the size of {v!r} must be a name (D, H, P, ...) or "
                            f"the number 1, got {size!r}")
    for v, size in declared.items():
        if size != 1 and size not in ("D", "H") and (
                size in values or size in cell.params or size in RESERVED | _MODULE_LOCALS
                or size.startswith("_") or keyword.iskeyword(size)):
            raise CellError(f"cell {name!r}: the size {size!r} of {v!r} is a name the cell or "
                            f"its module already uses; call it something else (P, E, ...)")
    if declared.get(INPUT, "D") != "D":
        raise CellError(f"cell {name!r}: the input x has size D (input_size), got "
                        f"{declared[INPUT]!r}")
    for v in cell.inputs[1:]:
        if v not in declared:
            raise CellError(f"cell {name!r}: give the size of the input {v!r} (sizes = "
                            f"{{ {v} = 1 }} for one number per step, or a name such as D or H)")
    fixed = {INPUT: "D", **{s: "H" for s in cell.states}, **declared}
    fixed.update({prev(s).name: fixed[s] for s in cell.states})
    scalars = {v for v in values if fixed.get(v) == 1}
    for node in cell.nodes:
        if isinstance(node, Affine) or node.out.name in declared:
            continue
        if isinstance(node.expr, mean) or (node.expr.free_symbols and all(
                s.name in scalars for s in node.expr.free_symbols)):
            scalars.add(node.out.name)
    for state in cell.states:
        if state in scalars and state not in declared:
            raise CellError(f"cell {name!r}: state {state!r} is computed from per-sample scalars "
                            f"(means) alone, so has size 1, not H")
        if state in scalars:
            raise CellError(f"cell {name!r}: state {state!r} is declared of size 1; a state is "
                            f"a vector (give it a size name, e.g. H)")
    inputs_only = ({fixed[v] for v in cell.inputs}
                   - {fixed[v] for v in fixed if v not in cell.inputs})
    parent = {v: v for v in values}
    size_of = {v: fixed[v] for v in fixed if v not in scalars}
    requires = []

    def find(v):
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    def union(a, b, where):
        a, b = find(a), find(b)
        if a == b:
            return
        sa, sb = size_of.pop(a, None), size_of.pop(b, None)
        if sa is not None and sb is not None and sa != sb:
            if sa not in inputs_only and sb not in inputs_only:
                raise CellError(f"cell {name!r}: {where} combines vectors of size {sa} and "
                                f"{sb}")
            given, other = (sa, sb) if sa in inputs_only else (sb, sa)
            if (given, other) not in [r[:2] for r in requires]:
                requires.append((given, other, where))
            sa = other
        parent[b] = a
        if (sa or sb) is not None:
            size_of[a] = sa or sb

    for state in cell.states:
        union(state, prev(state).name, f"state {state!r}")
    for node in cell.nodes:
        if isinstance(node, Affine) or isinstance(node.expr, mean):
            continue
        where = f"the equation of {node.out.name}"
        vectors = sorted((s for s in node.expr.free_symbols if s.name not in scalars),
                         key=lambda s: s.name)
        if node.out.name in scalars:
            if vectors:
                raise CellError(f"cell {name!r}: {where} is declared of size 1 but reads "
                                f"{vectors[0].name}, a vector")
            continue
        for s in vectors:
            union(node.out.name, s.name, where)
    sizes = {}
    for v in values:
        sizes[v] = 1 if v in scalars else size_of.get(find(v), "H")
    for v in cell.inputs:  # an input keeps its own size (D), equal to the other by requirement
        if v not in scalars:
            sizes[v] = fixed[v]
    for node in cell.nodes:
        reads = node.inputs if isinstance(node, Affine) else (
            node.expr.args if isinstance(node.expr, mean) else ())
        for v in reads:
            if v.name in scalars and (v.name not in cell.inputs or not isinstance(node, Affine)):
                what = (f"the affine map {node.weight.name}" if isinstance(node, Affine)
                        else f"the mean in the equation of {node.out.name}")
                raise CellError(f"cell {name!r}: {what} reads {v.name}, a per-sample "
                                f"scalar (size 1); it needs a vector")
    return dataclasses.replace(cell, scalars=frozenset(scalars),
                               sizes=tuple((v, sizes[v]) for v in values),
                               requires=tuple(requires))


def _validate(cell):
    if not cell.states:
        raise CellError(f"cell {cell.name!r}: declares no states")
    if '"""' in cell.doc or "\\" in cell.doc or not cell.doc.replace("\n", " ").isprintable():
        raise CellError(f"cell {cell.name!r}: its doc may not contain triple quotes, backslashes "
                        f"or control characters (it goes into a docstring)")
    _check_name(cell, cell.name, "cell")
    if not cell.inputs or cell.inputs[0] != INPUT:
        raise CellError(f"cell {cell.name!r}: the first input must be {INPUT!r}, got "
                        f"{list(cell.inputs)}")
    names = [(v, "input") for v in cell.inputs] + [(s, "state") for s in cell.states]
    names += [(prev(s).name, "previous state") for s in cell.states]
    names += [(p, "parameter") for p in cell.params]
    names += [(n.out.name, _what(cell, n)) for n in cell.nodes if n.out.name not in cell.states]
    seen = {}
    for name, what in names:
        _check_name(cell, name, what)
        if name in seen:
            raise CellError(f"cell {cell.name!r}: name {name!r} is declared twice "
                            f"(as {seen[name]} and as {what})")
        seen[name] = what
    updates = [n.out.name for n in cell.nodes if n.out.name in cell.states]
    for state in cell.states:
        if updates.count(state) != 1:
            raise CellError(f"cell {cell.name!r}: state {state!r} is "
                            + ("never updated" if state not in updates else "updated twice"))
    values = ({sym(v) for v in cell.inputs} | {prev(s) for s in cell.states}
              | {n.out for n in cell.nodes})
    vectors = {sym(v) for v in cell.vectors}
    used = set()
    for node in cell.nodes:
        if isinstance(node, Affine):
            twice = sorted({v.name for v in node.inputs if node.inputs.count(v) > 1})
            if twice:
                raise CellError(f"cell {cell.name!r}: the affine map {node.weight.name} reads "
                                f"{twice[0]} twice; read it once (one block of columns per "
                                f"vector)")
            for v in node.inputs:
                if v not in values:
                    raise CellError(f"cell {cell.name!r}: unknown symbol {v.name!r} read by the "
                                    f"affine map {node.weight.name}")
        else:
            _check_expr(cell, node, values | vectors)
        used |= _uses(node)
    if not any(sym(INPUT) in n.inputs for n in cell.affines):
        raise CellError(f"cell {cell.name!r}: the input x is never read (use it in an affine map)")
    for v in cell.inputs[1:]:
        if sym(v) not in used:
            raise CellError(f"cell {cell.name!r}: the input {v!r} is never read")
    state_syms = {sym(s) for s in cell.states}
    for node in cell.nodes:
        if node.out not in used and node.out not in state_syms:
            raise CellError(f"cell {cell.name!r}: {node.out.name} is computed but never used")
    for v in cell.vectors:
        if sym(v) not in used:
            raise CellError(f"cell {cell.name!r}: parameter {v!r} is declared but never used")
