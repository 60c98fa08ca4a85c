"""An independent numerical check of a Derivation, in 60-digit arithmetic on a small instance.

The instance has ``units`` = 3 units and ``inputs`` = 2 input entries: every parameter is an array
of entries (``W``: (H, sum of the sizes it reads), biases and elementwise parameters: (H,)),
every per-step value a vector of H entries (``x``: D), every per-sample scalar (``mean``) one
number. At random points (seeded) the cell is unrolled for K steps and the loss
``L = sum_t g_t . a<t> + sum_s h_s . s<K>`` (random weights g, h) is differentiated with respect
to every entry of every parameter, input and initial state, two ways:

- directly, by central differences of the unrolled forward, ``(L(p + h) - L(p - h)) / 2h`` with
  ``h = 1e-25`` at 60 digits: its error is below ~1e-35 relative (truncation ``h^2 L'''``, rounding
  ``1e-60 L / h``). The forward is the cell's own equations, nothing else: affine maps as
  matrix-vector products, activations from their ``definition`` with the real exponential (never
  their ``grad``), ``mean`` as ``(1/H) sum_j``, SymPy's functions as mpmath computes them;
- by the Derivation: its backward adjoints (``unitsum``, ``H``, ``sign``, ``Heaviside``,
  ``positive``, ...), projections ``W_block^T dz`` and sums over t, evaluated on the same forward
  values.

Why this is a proof and not a test of a formula against itself: the direct side uses no part of
the Derivation (no ``sympy.diff``, no ``grad``, no adjoint); the two sides share only the forward
values and the interpreter of SymPy expression trees below (each function evaluated as itself).
They are compared with a relative tolerance of 1e-20, 10^15 times the finite differences' error
and far below any discrepancy a wrong rule makes at a generic point (a wrong rule is a different
analytic expression: it can agree only on a set of measure zero, which random points miss). Three
units and two inputs make transposed weights, wrong column blocks, a wrong ``H`` and mixed-up
units show; with one unit they would cancel. Evaluating numbers at points, instead of building
the unrolled expression, keeps the cost linear in K: seconds for any cell.
"""

import random
from dataclasses import dataclass
from functools import reduce

import mpmath
import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p

from .activations import REGISTRY, is_activation, positive
from .cell import INPUT, Affine
from .derive import DY
from .reductions import UNITS, mean, unitsum
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


# -- the interpreter: a SymPy expression over H-vectors and per-sample scalars ------------------

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


def _compile(expr, units):
    """A function ``env -> value`` computing ``expr``; ``env`` maps symbols to values."""
    expr = _from_definitions(expr)

    def build(e):
        if e == UNITS:
            e = sp.Integer(units)
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
        if isinstance(e, mean):  # (1/H) sum_j v_j; of a per-sample scalar: itself
            (v,) = args
            return lambda env: _total(v(env), 1) / units
        if isinstance(e, unitsum):  # sum_j e_j; of a per-sample scalar: H times it
            (v,) = args
            return lambda env: _total(v(env), units)
        if isinstance(e, sp.Pow) and e.exp.is_Number:
            base, op = args[0], _power(e.exp)
            return lambda env: _broadcast(op, [base(env)])
        op = ELEMENTWISE.get(e.func, MP.power if isinstance(e, sp.Pow) else None)
        if op is None:
            raise TypeError(f"verify cannot evaluate {e.func.__name__} (in {expr})")
        return lambda env: _broadcast(op, [a(env) for a in args])

    return build(expr)


def _total(value, copies):
    return MP.fsum(value) if isinstance(value, tuple) else value * copies


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

class _Instance:
    """The cell with ``units`` units and ``inputs`` input entries: shapes, forward, loss."""

    def __init__(self, cell, units, inputs, steps):
        self.cell, self.units, self.inputs, self.steps = cell, units, inputs, steps
        self.sizes = {s: self.size(s) for n in cell.affines for s in n.inputs}
        shapes = {v: (units,) for v in cell.vectors}
        for node in cell.affines:
            shapes[node.weight.name] = (units, sum(self.sizes[v] for v in node.inputs))
            if node.bias is not None:
                shapes[node.bias.name] = (units,)
        self.shapes = {p: shapes[p] for p in cell.params}  # in declaration order
        self.shapes.update({f"{INPUT}<{t + 1}>": (inputs,) for t in range(steps)})
        self.shapes.update({f"{s}<0>": (units,) for s in cell.states})
        self.nodes = {n.out: _compile(n.expr, units) for n in cell.nodes
                      if not isinstance(n, Affine)}

    def size(self, symbol):
        """The number of entries of a value: 1, H or D."""
        size = self.cell.size(symbol)
        return {"H": self.units, "D": self.inputs}.get(size, size)

    def draw(self, rng):
        """A random point (every quantity's entries) and loss weights, entries in [-1, 1]."""
        def entries(shape):
            return tuple(MP.mpf(rng.uniform(-1, 1)) for _ in range(_count(shape)))

        point = {name: entries(shape) for name, shape in self.shapes.items()}
        g = [entries((self.units,)) for _ in range(self.steps)]
        h = {s: entries((self.units,)) for s in self.cell.states}
        return point, (g, h)

    def forward(self, point):
        """The values of every symbol at every step."""
        cell, history = self.cell, []
        state = {s: point[f"{s}<0>"] for s in cell.states}
        for t in range(self.steps):
            env = {sym(INPUT): point[f"{INPUT}<{t + 1}>"],
                   **{prev(s): state[s] for s in cell.states},
                   **{sym(v): point[v] for v in cell.vectors}}
            for node in cell.nodes:
                if isinstance(node, Affine):
                    read = sum((env[v] for v in node.inputs), ())
                    w, width = point[node.weight.name], len(read)
                    b = point[node.bias.name] if node.bias is not None else (0,) * self.units
                    env[node.out] = tuple(MP.fdot(w[i * width:(i + 1) * width], read) + b[i]
                                          for i in range(self.units))
                else:
                    env[node.out] = _real(self.nodes[node.out](env), node.out.name)
            state = {s: env[sym(s)] for s in cell.states}
            history.append(env)
        return history

    def loss(self, history, weights):
        g, h = weights
        out = sym(self.cell.states[0])
        return (MP.fsum(MP.fdot(gt, env[out]) for gt, env in zip(g, history, strict=True))
                + MP.fsum(MP.fdot(h[s], history[-1][sym(s)]) for s in self.cell.states))

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
        carry = dict(h)
        for t in reversed(range(self.steps)):
            env = dict(history[t])
            env[DY] = g[t]
            env.update({next_adjoint(s): carry[s] for s in cell.states})
            for a, expr in zip(derivation.backward, backward, strict=True):
                value = expr(env)
                for p in a.projections:
                    value = _broadcast(lambda u, v: u + v, [value, self.project(p, point, env)])
                if self.cell.size(a.of) == 1:
                    if isinstance(value, tuple):
                        raise _ShapeError(f"{a.out.name} is a vector of {len(value)} entries, "
                                          f"but {a.of.name} is a per-sample scalar")
                elif isinstance(value, tuple):  # a vector's gradient: of the vector's size
                    value = _vector(value, self.size(a.of), a.out.name)
                # else one number per sample (dvar / H for (v - mu)**2 under a mean): kept so,
                # as the derivation reads it (a per-sample factor outside a sum over the units)
                env[a.out] = _real(value, a.out.name)
            for r in derivation.reductions:
                dz = _vector(env[r.source], self.units, r.source.name)
                if r.kind == "weight":
                    read = sum((env[v] for v in r.affine.inputs), ())
                    flat = [d * v for d in dz for v in read]
                else:
                    flat = dz
                total = grads[r.param.name]
                grads[r.param.name] = [u + v for u, v in zip(total, flat, strict=True)]
            grads[f"{INPUT}<{t + 1}>"] = _vector(env[adjoint(INPUT)], self.inputs, "dx")
            carry = {s: env[adjoint(prev(s).name)] for s in cell.states}
        grads.update({f"{s}<0>": _vector(carry[s], self.units, f"d{s}_prev")
                      for s in cell.states})
        return {name: tuple(v) for name, v in grads.items()}

    def project(self, p, point, env):
        """``W_block^T dz``: the columns of W that read input ``p.index``, transposed, times dz."""
        node = p.affine
        width = sum(self.sizes[v] for v in node.inputs)
        start = sum(self.sizes[v] for v in node.inputs[:p.index])
        w = point[node.weight.name]
        dz = _vector(env[p.source], self.units, p.source.name)
        return tuple(MP.fdot([w[i * width + k] for i in range(self.units)], dz)
                     for k in range(start, start + self.sizes[node.inputs[p.index]]))


def _count(shape):
    return reduce(lambda m, n: m * n, shape, 1)


def _entry(name, shape, k):
    index = (k,) if len(shape) == 1 else divmod(k, shape[1])
    return f"{name}[{', '.join(map(str, index))}]"


def verify(derivation, steps=2, points=3, seed=0, *, units=3, inputs=2) -> list[Check]:
    """Compare the Derivation with central differences of the unrolled cell; one Check per
    quantity (parameter array, input step, initial state), ok when every entry agrees at every
    point. Raises ``NotDefined`` if the cell is not real and finite at random points."""
    if steps < 1:
        raise ValueError(f"steps: expected at least 1, got {steps}")
    if units < 1 or inputs < 1 or points < 1:
        raise ValueError(f"units, inputs, points: expected at least 1, got {units}, {inputs}, "
                         f"{points}")
    instance = _Instance(derivation.cell, units, inputs, steps)

    def broken(e):
        what = f"unknown symbol {e}" if isinstance(e, KeyError) else f"{type(e).__name__}: {e}"
        detail = f"the backward cannot be evaluated: {what}"
        return [Check(name, False, detail) for name in instance.shapes]

    try:
        backward = [_compile(a.expr, units) for a in derivation.backward]
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
            raise NotDefined(f"cell {derivation.cell.name!r} is not real and finite at "
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
