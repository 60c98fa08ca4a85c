"""An independent numerical check of a Derivation, in 60-digit arithmetic on a small instance.

The instance gives every size of the cell (``Cell.size_names``) its own small number of units:
D = ``inputs`` = 2, H = ``units`` = 3, the further names (P, ...) 4, 5, 6, ... in order, unless
``sizes`` says otherwise; sizes the cell requires equal (``Cell.requires``: a highway's D = H) get
one number. Every parameter is an array of entries (``W``: (its output's size, the sum of the
sizes it reads), biases and elementwise parameters: (their size,)), every per-step value a vector
of its own size (x: D, a state: H, or P for a projection), every per-sample scalar (a ``mean``, an
input of size 1 such as a time gap ``dt``) one number. At random points (seeded) the cell is
unrolled for K steps, every input (x, dt, ...) taking random values at every step, and the loss
``L = sum_t g_t . a<t> + sum_s h_s . s<K>`` (random weights g, h) is differentiated with respect
to every entry of every parameter, input step and initial state, two ways:

- directly, by central differences of the unrolled forward, ``(L(p + h) - L(p - h)) / 2h`` with
  ``h = 1e-25`` at 60 digits: its error is below ~1e-35 relative (truncation ``h^2 L'''``, rounding
  ``1e-60 L / h``). The forward is the cell's own equations, nothing else: affine maps as
  matrix-vector products, activations from their ``definition`` with the real exponential (never
  their ``grad``), ``mean(v)`` as ``(1/n) sum_j v_j`` over v's own n entries, SymPy's functions as
  mpmath computes them;
- by the Derivation: its backward adjoints (``unitsum`` as the sum of its operand's entries, the
  size symbols ``H``, ``P``, ... as their numbers of units, ``sign``, ``Heaviside``,
  ``positive``, ...), projections ``W_block^T dz`` and sums over t, evaluated on the same forward
  values.

Why this is a proof and not a test of a formula against itself: the direct side uses no part of
the Derivation (no ``sympy.diff``, no ``grad``, no adjoint, no size symbol); the two sides share
only the forward values and the interpreter of SymPy expression trees below (each function
evaluated as itself). They are compared with a relative tolerance of 1e-20, 10^15 times the finite
differences' error and far below any discrepancy a wrong rule makes at a generic point (a wrong
rule is a different analytic expression: it can agree only on a set of measure zero, which random
points miss). Several units, and sizes that differ from each other, make transposed weights, wrong
column blocks, a wrong H (or H where P belongs) and mixed-up units show; with one unit they would
cancel. Evaluating numbers at points, instead of building the unrolled expression, keeps the cost
linear in K: seconds for any cell.
"""

import random
from dataclasses import dataclass
from functools import reduce

import mpmath
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .activations import REGISTRY, is_activation, positive
from .cell import Affine
from .derive import DY
from .reductions import mean, unitsum
from .symbols import adjoint, next_adjoint, prev, sym

MP = mpmath.MPContext()  # a context of our own: mpmath's global precision stays as it is
MP.dps = 60
STEP = MP.mpf("1e-25")  # the central differences' step
TOLERANCE = MP.mpf("1e-20")  # relative to the largest gradient entry at the point
FLOOR = MP.mpf("1e-30")  # the scale when every gradient entry is (about) zero
ATTEMPTS = 50  # random draws tried for a point where the cell is real and finite


@dataclass(frozen=True)
class Check:
    quantity: str
    ok: bool
    detail: str = ""


class NotDefined(ValueError):
    """The cell is not real and finite at any of the random points tried."""


class _Undefined(ArithmeticError):
    """A value that is not a finite real number (log of a negative number, division by 0)."""


class _ShapeError(ValueError):
    """A vector where a per-sample scalar belongs, or vectors of different sizes combined."""


# -- the interpreter: a SymPy expression over vectors and per-sample scalars --------------------

def _broadcast(op, args):
    """``op`` entry by entry; a scalar (an mpf) goes with every entry of a vector (a tuple)."""
    sizes = {len(a) for a in args if isinstance(a, tuple)}
    if not sizes:
        return op(*args)
    if len(sizes) > 1:
        raise _ShapeError(f"vectors of sizes {sorted(sizes)} combined entry by entry")
    (n,) = sizes
    return tuple(op(*row) for row in zip(*(a if isinstance(a, tuple) else (a,) * n
                                             for a in args), strict=True))


HALF = MP.mpf(1) / 2


def _heaviside(u, at_zero=HALF):
    """SymPy's Heaviside: 1/2 at 0 unless its second argument says otherwise."""
    return MP.one if u > 0 else MP.zero if u < 0 else at_zero


def _piecewise(*flat):
    """``Piecewise`` with its (value, condition) pairs flattened: the first value that holds."""
    return next(v for v, c in zip(flat[::2], flat[1::2], strict=True) if c)


ELEMENTWISE = {
    sp.Add: lambda *v: MP.fsum(v),
    sp.Mul: lambda *v: reduce(lambda p, q: p * q, v),
    sp.exp: MP.exp, sp.log: MP.log, log1p: MP.log1p, expm1: MP.expm1, sp.sin: MP.sin,
    sp.cos: MP.cos, sp.Abs: abs, sp.sign: MP.sign, sp.Heaviside: _heaviside,
    positive: lambda u: MP.one if u > 0 else MP.zero,
    sp.Max: lambda *v: max(v), sp.Min: lambda *v: min(v), sp.Piecewise: _piecewise,
    sp.StrictGreaterThan: lambda u, v: u > v, sp.GreaterThan: lambda u, v: u >= v,
    sp.StrictLessThan: lambda u, v: u < v, sp.LessThan: lambda u, v: u <= v,
}


def _power(exponent):
    if exponent.is_Integer:
        return lambda u: u ** int(exponent)
    if exponent == sp.S.Half:
        return MP.sqrt
    e = MP.mpf(exponent.p) / exponent.q if exponent.is_Rational else MP.mpf(str(exponent))
    return lambda u: MP.power(u, e)


def _from_definitions(expr):
    """The expression with every activation written from its definition (the real exp)."""
    return expr.replace(is_activation,
                        lambda a: REGISTRY[a.func.__name__].definition(a.args[0], sp.exp))


def _compile(expr, numbers=None, units_of=None):
    """A function ``env -> value`` computing ``expr``; ``env`` maps symbols to values.

    ``numbers``: symbols that stand for numbers (the sizes H, P, ... of a derived expression; the
    forward has none). ``units_of(e)``: the number of units of a derived ``unitsum(e)`` whose
    operand ``e`` comes out one number per sample (None: not known, an error)."""
    expr = _from_definitions(expr)
    numbers = numbers or {}

    def build(e):
        if e in numbers:
            e = sp.Integer(numbers[e])
        if isinstance(e, sp.Symbol):
            return lambda env: env[e]
        if e.is_Number or isinstance(e, sp.NumberSymbol):
            c = MP.mpf(e.p) / e.q if e.is_Rational else MP.mpf(str(sp.N(e, MP.dps + 10)))
            return lambda env: c
        if e in (sp.true, sp.false):
            return lambda env, c=bool(e): c
        if isinstance(e, sp.Piecewise):
            args = [build(part) for pair in e.args for part in pair]
        else:
            args = [build(a) for a in e.args]
        if isinstance(e, mean):  # (1/n) sum_j v_j over v's own n entries; of a scalar: itself
            (v,) = args
            return lambda env: _mean(v(env))
        if isinstance(e, unitsum):  # sum_j e_j over the operand's entries
            (v,), n = args, units_of(e.args[0]) if units_of else None
            return lambda env: _unitsum(v(env), n, e)
        if isinstance(e, sp.Pow) and e.exp.is_Number:
            base, op = args[0], _power(e.exp)
            return lambda env: _broadcast(op, [base(env)])
        op = ELEMENTWISE.get(e.func, MP.power if isinstance(e, sp.Pow) else None)
        if op is None:
            raise TypeError(f"verify cannot evaluate {e.func.__name__} (in {expr})")
        return lambda env: _broadcast(op, [a(env) for a in args])

    return build(expr)


def _mean(value):
    return MP.fsum(value) / len(value) if isinstance(value, tuple) else value


def _unitsum(value, n, e):
    if isinstance(value, tuple):
        return MP.fsum(value)
    if n is None:
        raise _ShapeError(f"{e} is one number per sample, of no known size: unitsum({e}) "
                          f"cannot be summed")
    return value * n  # a vector's adjoint kept as one number per sample (dvar / H), n times


def _real(value, what):
    for v in value if isinstance(value, tuple) else (value,):
        if not (isinstance(v, MP.mpf) and MP.isfinite(v)):
            raise _Undefined(f"{what} = {v}")
    return value


def _vector(value, n, what):
    """``value`` as a vector of ``n`` entries (a scalar broadcast); a vector of another size is an
    error."""
    if not isinstance(value, tuple):
        return (value,) * n
    if len(value) != n:
        raise _ShapeError(f"{what} has {len(value)} entries, expected {n}")
    return value


# -- the instance -------------------------------------------------------------------------------

def instance_sizes(cell, units=3, inputs=2, sizes=None) -> dict[str, int]:
    """The number of units ``verify`` gives every size name of the cell (``{"D": 2, "H": 3,
    "P": 4}``): D = inputs, H = units, the others max(D, H) + 1, + 2, ... in order, ``sizes``
    overriding; sizes the cell requires equal made equal (to the one ``sizes`` gives, else to the
    non-input size: a highway's D takes H's). ValueError for a size the cell does not have, a
    number below 1, or two given sizes the cell requires equal that differ."""
    given = dict(sizes or {})
    unknown = sorted(set(given) - set(cell.size_names))
    if unknown:
        raise ValueError(f"sizes: cell {cell.name!r} has no size {unknown[0]!r} (its sizes: "
                         f"{', '.join(cell.size_names)})")
    counts = {"D": inputs, "H": units}
    counts.update({n: max(units, inputs) + 1 + k for k, n in enumerate(cell.extra_sizes)})
    counts.update(given)
    bad = [(n, c) for n, c in counts.items() if not (isinstance(c, int) and c >= 1)]
    if bad:
        raise ValueError(f"sizes: {bad[0][0]} must be a whole number of units, at least 1, got "
                         f"{bad[0][1]!r}")
    parent = {n: n for n in counts}

    def find(n):
        while parent[n] != n:
            n = parent[n]
        return n

    for d, h, _ in cell.requires:
        parent[find(d)] = find(h)
    inputs_sizes = {d for d, _, _ in cell.requires}
    for group in {find(n) for n in counts}:
        members = sorted(n for n in counts if find(n) == group)
        chosen = {given[n] for n in members if n in given}
        if len(chosen) > 1:
            (d, h, where), *_ = (r for r in cell.requires if find(r[0]) == group)
            said = ", ".join(f"{n} = {given[n]}" for n in members if n in given)
            raise ValueError(f"sizes: {said}, but the cell needs them equal ({where} adds {d} "
                             f"to {h})")
        count = (chosen.pop() if chosen else
                 next(counts[n] for n in members if n not in inputs_sizes or n == members[-1]))
        counts.update({n: count for n in members})
    return counts


class _Instance:
    """The cell with ``counts[name]`` units for each size name: shapes, forward, loss."""

    def __init__(self, cell, counts, steps):
        self.cell, self.counts, self.steps = cell, counts, steps
        self._sizes = {}  # symbol -> cell.size(symbol), looked up once
        shapes = {v: (self.entries(v),) for v in cell.vectors}
        for node in cell.affines:
            shapes[node.weight.name] = (self.entries(node.out),
                                        sum(self.entries(v) for v in node.inputs))
            if node.bias is not None:
                shapes[node.bias.name] = (self.entries(node.out),)
        self.shapes = {p: shapes[p] for p in cell.params}  # in declaration order
        self.shapes.update({f"{v}<{t + 1}>": (self.entries(v),)
                            for v in cell.inputs for t in range(steps)})
        self.shapes.update({f"{s}<0>": (self.entries(s),) for s in cell.states})
        self.nodes = {n.out: _compile(n.expr) for n in cell.nodes if not isinstance(n, Affine)}

    def size(self, symbol):
        """``Cell.size``: 1 for a per-sample scalar, else the name of the value's size."""
        if symbol not in self._sizes:
            self._sizes[symbol] = self.cell.size(symbol)
        return self._sizes[symbol]

    def entries(self, symbol):
        """The number of entries of a value: 1 for a per-sample scalar, else its size's count."""
        size = self.size(symbol)
        return 1 if size == 1 else self.counts[size]

    def value(self, symbol, value, what=None):
        """``value`` as the interpreter holds ``symbol``'s: one number for a per-sample scalar, a
        vector of its size's entries otherwise (a per-sample value broadcast)."""
        what = what or (symbol.name if isinstance(symbol, sp.Symbol) else symbol)
        if self.size(symbol) != 1:
            return _vector(value, self.entries(symbol), what)
        if isinstance(value, tuple):
            if len(value) != 1:
                raise _ShapeError(f"{what} is a vector of {len(value)} entries, but it is a "
                                  f"per-sample scalar")
            (value,) = value
        return value

    def draw(self, rng):
        """A random point (every quantity's entries) and loss weights, entries in [-1, 1]."""
        def entries(shape):
            return tuple(MP.mpf(rng.uniform(-1, 1)) for _ in range(_count(shape)))

        point = {name: entries(shape) for name, shape in self.shapes.items()}
        out = self.cell.states[0]
        g = [entries((self.entries(out),)) for _ in range(self.steps)]
        h = {s: entries((self.entries(s),)) for s in self.cell.states}
        return point, (g, h)

    def forward(self, point):
        """The values of every symbol at every step."""
        cell, history = self.cell, []
        state = {s: self.value(s, point[f"{s}<0>"]) for s in cell.states}
        for t in range(self.steps):
            env = {sym(v): self.value(v, point[f"{v}<{t + 1}>"]) for v in cell.inputs}
            env.update({prev(s): state[s] for s in cell.states})
            env.update({sym(v): self.value(v, point[v]) for v in cell.vectors})
            for node in cell.nodes:
                if isinstance(node, Affine):
                    read = sum((_vector(env[v], self.entries(v), v.name) for v in node.inputs), ())
                    w, width, rows = point[node.weight.name], len(read), self.entries(node.out)
                    b = point[node.bias.name] if node.bias is not None else (0,) * rows
                    value = tuple(MP.fdot(w[i * width:(i + 1) * width], read) + b[i]
                                  for i in range(rows))
                else:
                    value = _real(self.nodes[node.out](env), node.out.name)
                env[node.out] = self.value(node.out, value)
            state = {s: env[sym(s)] for s in cell.states}
            history.append(env)
        return history

    def loss(self, history, weights):
        g, h = weights

        def dot(weight, s, env):
            return MP.fdot(weight, _vector(env[sym(s)], self.entries(s), s))

        out = self.cell.states[0]
        return (MP.fsum(dot(gt, out, env) for gt, env in zip(g, history, strict=True))
                + MP.fsum(dot(h[s], s, history[-1]) for s in self.cell.states))

    def differences(self, point, weights):
        """The gradient by central differences of the loss, quantity by quantity."""
        grads = {}
        for name, values in point.items():
            entries = []
            for k in range(len(values)):
                side = []
                for step in (STEP, -STEP):
                    moved = dict(point)
                    moved[name] = values[:k] + (values[k] + step,) + values[k + 1:]
                    side.append(self.loss(self.forward(moved), weights))
                entries.append((side[0] - side[1]) / (2 * STEP))
            grads[name] = tuple(entries)
        return grads

    def backward(self, derivation, backward, point, history, weights):
        """The Derivation's backward on this instance: the gradient, quantity by quantity."""
        cell, (g, h) = self.cell, weights
        grads = {name: [MP.zero] * _count(shape) for name, shape in self.shapes.items()}
        out = cell.states[0]
        carry = {s: self.value(s, h[s]) for s in cell.states}
        for t in reversed(range(self.steps)):
            env = dict(history[t])
            env[DY] = self.value(out, g[t], "dy")
            env.update({next_adjoint(s): carry[s] for s in cell.states})
            for a, expr in zip(derivation.backward, backward, strict=True):
                value = expr(env)
                for p in a.projections:
                    value = _broadcast(lambda u, v: u + v, [value, self.project(p, point, env)])
                if self.size(a.of) == 1:
                    if isinstance(value, tuple):
                        raise _ShapeError(f"{a.out.name} is a vector of {len(value)} entries, "
                                          f"but {a.of.name} is a per-sample scalar")
                elif isinstance(value, tuple):  # a vector's gradient: of the vector's size
                    value = _vector(value, self.entries(a.of), a.out.name)
                # else one number per sample (dvar / H for (v - mu)**2 under a mean): kept so,
                # as the derivation reads it (a per-sample factor outside a sum over the units)
                env[a.out] = _real(value, a.out.name)
            for r in derivation.reductions:
                if r.kind == "vector":
                    flat = _vector(env[r.source], self.entries(r.param), r.source.name)
                else:
                    dz = _vector(env[r.source], self.entries(r.affine.out), r.source.name)
                    if r.kind == "weight":
                        read = sum((_vector(env[v], self.entries(v), v.name)
                                    for v in r.affine.inputs), ())
                        flat = [d * v for d in dz for v in read]
                    else:
                        flat = dz
                total = grads[r.param.name]
                if len(flat) != len(total):
                    raise _ShapeError(f"the gradient of {r.param.name} has {len(flat)} entries, "
                                      f"expected {len(total)}")
                grads[r.param.name] = [u + v for u, v in zip(total, flat, strict=True)]
            for v in cell.inputs:
                grads[f"{v}<{t + 1}>"] = _vector(env[adjoint(v)], self.entries(v), f"d{v}")
            carry = {s: env[adjoint(prev(s).name)] for s in cell.states}
        grads.update({f"{s}<0>": _vector(carry[s], self.entries(s), f"d{s}_prev")
                      for s in cell.states})
        return {name: tuple(v) for name, v in grads.items()}

    def project(self, p, point, env):
        """``W_block^T dz``: the columns of W that read input ``p.index``, transposed, times dz
        (one number for a per-sample input)."""
        node, v = p.affine, p.affine.inputs[p.index]
        width = sum(self.entries(u) for u in node.inputs)
        start = sum(self.entries(u) for u in node.inputs[:p.index])
        w, rows = point[node.weight.name], self.entries(node.out)
        dz = _vector(env[p.source], rows, p.source.name)
        block = tuple(MP.fdot([w[i * width + k] for i in range(rows)], dz)
                      for k in range(start, start + self.entries(v)))
        return self.value(v, block, f"{node.weight.name}^T d{node.out.name}")

    def derived(self, derivation):
        """The backward adjoints' expressions compiled: the size symbols (H, P, ...) as their
        numbers of units, a unitsum of one number per sample over its operand's size."""
        cell = self.cell
        sizes = dict(cell.sizes)
        taken = set(sizes) | set(cell.params)  # a size named as a value is that value
        numbers = {sym(n): c for n, c in self.counts.items() if n not in taken}

        def size_of(s):
            name = s.name
            if name in sizes or name == DY.name or name.endswith("_next"):
                return cell.size(name)
            if name.startswith("d") and name[1:] in sizes:
                return sizes[name[1:]]
            return None

        def units_of(e):
            named = {size_of(s) for s in e.free_symbols} - {1, None}
            return self.counts[named.pop()] if len(named) == 1 else None

        return [_compile(a.expr, numbers, units_of) for a in derivation.backward]


def _count(shape):
    return reduce(lambda m, n: m * n, shape, 1)


def _entry(name, shape, k):
    index = (k,) if len(shape) == 1 else divmod(k, shape[1])
    return f"{name}[{', '.join(map(str, index))}]"


def verify(derivation, steps=2, points=3, seed=0, *, units=3, inputs=2,
           sizes=None) -> list[Check]:
    """Compare the Derivation with central differences of the unrolled cell; one Check per
    quantity (parameter array, input step ``x<1>``, ..., ``dt<1>``, ..., initial state), ok when
    every entry agrees at every point. ``units``: H's number of units, ``inputs``: D's, the further
    sizes (P, ...) max(D, H) + 1, + 2, ...; ``sizes`` ({"P": 2}) sets any of them; sizes the cell
    requires equal are made so (``instance_sizes`` gives a cell's numbers). Raises ``NotDefined``
    if the cell is not real and finite at random points."""
    if steps < 1:
        raise ValueError(f"steps: expected at least 1, got {steps}")
    if units < 1 or inputs < 1 or points < 1:
        raise ValueError(f"units, inputs, points: expected at least 1, got {units}, {inputs}, "
                         f"{points}")
    cell = derivation.cell
    instance = _Instance(cell, instance_sizes(cell, units, inputs, sizes), steps)

    def broken(e):
        what = f"unknown symbol {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        detail = f"the backward cannot be evaluated: {what}"
        return [Check(name, False, detail) for name in instance.shapes]

    try:
        backward = instance.derived(derivation)
    except TypeError as e:
        return broken(e)
    rng = random.Random(seed)
    failed = {}  # quantity -> detail of its first failure
    for k in range(points):
        for _ in range(ATTEMPTS):
            point, weights = instance.draw(rng)
            try:
                history = instance.forward(point)
                direct = instance.differences(point, weights)
                break
            except (_Undefined, ZeroDivisionError) as e:
                undefined = e
        else:
            raise NotDefined(f"cell {cell.name!r} is not real and finite at "
                             f"{ATTEMPTS} random points ({undefined})")
        try:
            derived = instance.backward(derivation, backward, point, history, weights)
        except (_ShapeError, _Undefined, ZeroDivisionError, KeyError, TypeError) as e:
            return broken(e)
        # the largest entry of the gradient sets the scale (a floor for an all-zero gradient)
        scale = max([abs(v) for values in direct.values() for v in values] + [FLOOR])
        for name, shape in instance.shapes.items():
            if name in failed:
                continue
            errors = [(abs(d - f) / max(abs(d), abs(f), scale), j)
                      for j, (d, f) in enumerate(zip(direct[name], derived[name], strict=True))]
            error, j = max(errors)
            if error > TOLERANCE:
                failed[name] = (f"worst entry {_entry(name, shape, j)} at point {k + 1}: direct "
                                f"{MP.nstr(direct[name][j], 15)}, derived "
                                f"{MP.nstr(derived[name][j], 15)} (relative error "
                                f"{MP.nstr(error, 2)})")
    return [Check(name, name not in failed, failed.get(name, "")) for name in instance.shapes]
