"""An independent symbolic check of a Derivation, on the scalar instance of its cell.

With H = D = 1 every parameter entry is a SymPy symbol. The cell is unrolled for K steps, with each
activation written from its definition with one exponential (``sigmoid(z) = 1/(1 + E(-z))``,
where ``E`` is an opaque function whose derivative is itself), and the loss
``L = sum_t g_t a<t> + sum_s h_s s<K>`` is differentiated directly with ``sympy.diff`` with respect
to every parameter, input and initial state. The Derivation's backward equations are run on the
same instance (its adjoint expressions, its projections, its sums over t). Both sides are rational
functions of the symbols and of the ``E(...)`` values; they are compared exactly, in rational
arithmetic, at random rational points (every ``E(...)`` application drawn as its own number: the
identity must hold for them as free values, which is stronger than at the true exponentials).
Nothing here uses the activations' ``grad`` rules except through the Derivation under test.
"""

import random
from dataclasses import dataclass

import sympy as sp

from .activations import REGISTRY, is_activation
from .cell import INPUT, Affine
from .derive import DY
from .symbols import adjoint, next_adjoint, prev, sym


class E(sp.Function):
    """exp, kept opaque: no automatic simplification, derivative E' = E."""

    nargs = 1

    def fdiff(self, argindex=1):
        return self


@dataclass(frozen=True)
class Check:
    quantity: str
    ok: bool
    detail: str = ""


def _from_definitions(expr):
    """The expression with every activation written from its definition."""
    return expr.replace(is_activation,
                        lambda a: REGISTRY[a.func.__name__].definition(a.args[0], E))


def _scalar_params(cell):
    scalars = {}
    for node in cell.affines:
        scalars[node.weight.name] = [sp.Symbol(f"{node.weight.name}[0, {j}]", real=True)
                                     for j in range(len(node.inputs))]
        if node.bias is not None:
            scalars[node.bias.name] = [sp.Symbol(f"{node.bias.name}[0]", real=True)]
    for v in cell.vectors:
        scalars[v] = [sp.Symbol(f"{v}[0]", real=True)]
    return scalars


def _unroll(cell, steps, scalars, xs, state0):
    """Forward values of every symbol at every step, activations from their definitions."""
    history, states = [], dict(state0)
    for t in range(steps):
        values = {sym(INPUT): xs[t], **{prev(s): states[s] for s in cell.states}}
        values.update({sym(v): scalars[v][0] for v in cell.vectors})
        for node in cell.nodes:
            if isinstance(node, Affine):
                bias = scalars[node.bias.name][0] if node.bias is not None else 0
                values[node.out] = sum(w * values[v] for w, v in
                                       zip(scalars[node.weight.name], node.inputs, strict=True))
                values[node.out] += bias
            else:
                values[node.out] = _from_definitions(node.expr.xreplace(values))
        states = {s: values[sym(s)] for s in cell.states}
        history.append(values)
    return history


def _backward(derivation, history, scalars, g, h):
    """The Derivation's backward, run on the scalar instance: gradients by quantity name."""
    cell = derivation.cell
    grads = {name: [sp.S(0)] * len(v) for name, v in scalars.items()}
    dx = [None] * len(history)
    carry = {s: h[s] for s in cell.states}
    for t in reversed(range(len(history))):
        env = dict(history[t])
        env[DY] = g[t]
        env.update({next_adjoint(s): carry[s] for s in cell.states})
        for a in derivation.backward:
            total = a.expr.xreplace(env)
            for p in a.projections:
                total += scalars[p.affine.weight.name][p.index] * env[p.source]
            env[a.out] = total
        for r in derivation.reductions:
            source = env[r.source]
            if r.kind == "weight":
                for j, v in enumerate(r.affine.inputs):
                    grads[r.param.name][j] += source * env[v]
            else:
                grads[r.param.name][0] += source
        dx[t] = env[adjoint(INPUT)]
        carry = {s: env[adjoint(prev(s).name)] for s in cell.states}
    found = {str(sym_): grads[name][j] for name, syms in scalars.items()
             for j, sym_ in enumerate(syms)}
    found.update({f"x<{t + 1}>": dx[t] for t in range(len(history))})
    found.update({f"{s}<0>": carry[s] for s in cell.states})
    return found


def verify(derivation, steps=2, points=3, seed=0) -> list[Check]:
    """Compare the Derivation with direct differentiation; one Check per quantity."""
    if steps < 1:
        raise ValueError(f"steps: expected at least 1, got {steps}")
    cell = derivation.cell
    scalars = _scalar_params(cell)
    xs = [sp.Symbol(f"x<{t + 1}>", real=True) for t in range(steps)]
    state0 = {s: sp.Symbol(f"{s}<0>", real=True) for s in cell.states}
    g = [sp.Symbol(f"g<{t + 1}>", real=True) for t in range(steps)]
    h = {s: sp.Symbol(f"h_{s}", real=True) for s in cell.states}
    history = _unroll(cell, steps, scalars, xs, state0)
    loss = sum(gt * values[sym(cell.states[0])] for gt, values in zip(g, history, strict=True))
    loss += sum(h[s] * history[-1][sym(s)] for s in cell.states)
    derived = _backward(derivation, history, scalars, g, h)

    wrt = {str(v): v for vs in scalars.values() for v in vs}
    wrt.update({str(x): x for x in xs})
    wrt.update({str(v): v for v in state0.values()})
    rng = random.Random(seed)
    checks = []
    for name, symbol in wrt.items():
        direct = sp.diff(loss, symbol)
        difference = direct - derived[name]
        atoms = sorted(difference.atoms(E), key=sp.default_sort_key)
        free = sorted(difference.free_symbols, key=sp.default_sort_key)
        bad = None
        for k in range(points):
            point = {s: sp.Rational(rng.randint(-9, 9), rng.randint(1, 9)) for s in free}
            point.update({e: sp.Rational(rng.randint(1, 19), rng.randint(1, 9)) for e in atoms})
            value = difference.xreplace(point)  # E(...) first: xreplace matches top-down
            if value != 0:
                bad = f"direct - derived = {value} at point {k + 1}"
                break
        checks.append(Check(name, bad is None, bad or ""))
    return checks
