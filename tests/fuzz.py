"""Random recurrent cells, as TOML spec texts, for the fuzz tests (tests/test_fuzz.py).

A compiler is trusted when random programs agree: every cell drawn here is parsed
(``symrnn.spec.parse_spec``), derived, verified, generated for both backends and checked against
finite differences. ``random_cell(rng)`` (a ``numpy.random.Generator`` or an int seed) returns the
text of one cell; the same seed always gives the same text.

The grammar the generator covers (tests/test_fuzz.py checks that the default cells use all of it):

- 1-3 states from ``a, c, h, m, s`` (the first is the output), 2-6 equations in all, forming a
  random DAG: an equation reads ``x`` (in affine maps only), every ``<state>_prev``, and the
  targets of earlier equations (gates, candidates, per-sample scalars, states already updated in
  the step); every state is updated once, every target and every declared param is used, and
  ``x`` is read by at least one affine map. Sometimes the equations are written out of order
  (the spec allows forward references), ``input = "x"`` and a ``doc`` are given, and strings are
  TOML literal strings ``'...'``;
- affine maps ``W_k[v1, v2, ...]`` over 1-3 distinct vectors: ``x``, previous states, earlier
  targets (a gate read directly by an affine map: a deep transition), current states, products
  ``r * a_prev`` (the GRU's reset); with a bias (``+ b_k`` right after the map in its sum, or
  ``1 - W_k[...] - b_k``) or without one (then there is no bias parameter); several affine maps in
  one equation: bias-less ones side by side in one sum, biased ones each in a sum of its own
  (``g * (W_k[...] + b_k)``, ``(W_k[...] + b_k) / 2``, inside a function call);
- every registered activation: sigmoid, tanh, relu, softsign, hard_sigmoid, identity, softplus,
  silu, elu;
- every function of ``activations.FUNCTIONS``, in numerically sane forms: ``exp`` of bounded
  arguments (``exp(-abs(u))``, ``exp(tanh(u))``, ``exp(u - max(u, v))``, ``exp(cos(u))``,
  ``exp(-u**2 / 2)``), ``log``, ``log1p``, ``sqrt`` and rational powers ``**`` of positive
  quantities (``log(1 + u**2)``, ``log1p(sigmoid(u))``, ``sqrt(u**2 + 1)``,
  ``(softplus(u) + 1) ** (3/2)``, ``(1 + u**2) ** (-1/2)``, ``** 0.5``), ``abs``, ``sin``,
  ``cos``, ``max(u, v)``, ``min(u, v)``; division by positive expressions
  (``u / (2 + abs(v))``, ``u / (1 + v**2)``, ``u / sqrt(1 + v**2)``);
- ``mean(v)`` (a per-sample scalar that broadcasts back: inline ``v - mean(v)``,
  ``mean(u) * v``, or an equation of its own ``k = mean(...)`` read elementwise later) and
  ``layer_norm(v)`` / ``layer_norm(v, eps)``;
- elementwise parameters declared in ``params = [...]`` (``p``, ``w``, ``p_f``, ``p_o``,
  ``gamma``, ``beta``), multiplied elementwise (``p_f * c_prev``) or added;
- gate names of one letter as papers write them (``f, i, o, r, z``), and longer ones
  (``Gamma_f``, ``c_tilde``, ...); int and float literals (``0.5``, ``1/2``, ``1e-2``), unary
  minus.

Numerical sanity, so that central finite differences in float64 are meaningful: states stay
bounded over a few steps (each state is a bounded function of its inputs, ``tanh(...)``,
``sigmoid(...)``, ``softsign(...)``, ``layer_norm(...)``, ``o * tanh(...)``, or a convex mix
``g * s_prev + (1 - g) * tanh(...)``, or an LSTM-like ``f * c_prev + i * tanh(...)`` that grows
at most by 1 a step); logs, roots, powers and divisors are of quantities bounded away from 0;
exponentials are of bounded arguments. Kinks (relu, hard_sigmoid, abs, max, min) are hit at the
sampled points with probability zero, except where a relu or hard_sigmoid is flat, where both
sides agree. An expression that appears twice in one equation (``u - mean(u)``,
``exp(u - max(u, v))``) is built from names only, never from an affine map (a weight is declared
once).
"""

import numpy as np

STATE_NAMES = ("a", "c", "h", "m", "s")
GATE_LETTERS = ("f", "i", "o", "r", "z")  # one letter, as papers write gates
OTHER_NAMES = ("g", "u", "v", "Gamma_f", "Gamma_u", "Gamma_o", "c_tilde", "h_tilde", "n_t")
SCALAR_NAMES = ("k", "mbar", "nu")
PARAM_NAMES = ("p", "w", "p_f", "p_o", "gamma", "beta")

ACTIVATIONS = ("sigmoid", "tanh", "relu", "softsign", "hard_sigmoid", "identity", "softplus",
               "silu", "elu")
FUNCTIONS = ("exp", "log", "log1p", "sqrt", "abs", "sin", "cos", "max", "min")
BOUNDED = ("tanh", "sigmoid", "softsign", "hard_sigmoid", "sin", "cos")  # |f(u)| <= 1
GATING = ("sigmoid", "hard_sigmoid")  # values in [0, 1]
# smooth and nonlinear: the mean of f(layer_norm(v) + ...) depends on v (under identity, relu,
# hard_sigmoid or elu in a linear stretch it would not, and the gradient would be 0 up to rounding)
SMOOTH = ("sigmoid", "tanh", "softsign", "softplus", "silu")
SATURATING = ("tanh", "sigmoid", "softsign")  # states: bounded, and the gain stays small

# Precedence of an expression string: a sum needs parentheses under * / ** and unary minus.
SUM, PRODUCT, ATOM = 0, 1, 2


class _E:
    """An expression's text, its precedence, and whether it contains an affine map (then it may
    be written only once in a cell)."""

    __slots__ = ("text", "prec", "affine")

    def __init__(self, text, prec=ATOM, affine=False):
        self.text, self.prec, self.affine = text, prec, affine

    def at(self, prec):
        """The text, parenthesised if it binds more loosely than ``prec``."""
        return self.text if self.prec >= prec else f"({self.text})"


def _sum(*parts):
    return _E(" + ".join(p.text for p in parts), SUM, any(p.affine for p in parts))


def _mul(a, b):
    return _E(f"{a.at(PRODUCT)} * {b.at(PRODUCT + 1)}", PRODUCT, a.affine or b.affine)


def _call(name, *args):
    return _E(f"{name}({', '.join(a.text for a in args)})", ATOM, any(a.affine for a in args))


class _Generator:
    def __init__(self, rng):
        self.rng = rng
        self.vectors = []  # H-vectors an equation may read: previous states, earlier targets
        self.gates = []  # earlier targets with values in [0, 1]
        self.scalars = []  # earlier targets that are per-sample scalars (means)
        self.demand = []  # targets and params not read yet: the next reads take these first
        self.n_affine = 0
        self.target = None
        self.affine_in_eq = 0
        self.read_x = False

    # -- small helpers ---------------------------------------------------------------------------

    def chance(self, p):
        return self.rng.random() < p

    def pick(self, seq):
        return seq[int(self.rng.integers(len(seq)))]

    def name(self, *, scalars=False):
        """A name to read: a demanded one first, else any vector (or scalar)."""
        for k, n in enumerate(self.demand):
            if n in self.vectors or (scalars and n in self.scalars):
                return _E(self.demand.pop(k))
        pool = self.vectors + (self.scalars if scalars and self.chance(0.3) else [])
        return _E(self.pick(pool))

    def param(self):
        """A demanded param, or None."""
        for k, n in enumerate(self.demand):
            if n in self.params:
                return _E(self.demand.pop(k))
        return None

    # -- affine maps ----------------------------------------------------------------------------

    def affine(self, bias):
        """``W_k[v1, ...]`` (+ ``b_k``): the map, and whether x is among its inputs."""
        self.n_affine += 1
        self.affine_in_eq += 1
        suffix = self.target if self.affine_in_eq == 1 else f"{self.target}{self.affine_in_eq}"
        pool = ["x"] + self.vectors
        count = 1 + int(self.rng.integers(3))
        chosen = []
        for n in list(self.demand):  # a demanded vector read here directly (a deep transition)
            if n in self.vectors and len(chosen) < count and self.chance(0.6):
                chosen.append(n)
                self.demand.remove(n)
        while len(chosen) < min(count, len(pool)):
            v = self.pick(pool)
            if v not in chosen:
                chosen.append(v)
        if not self.read_x and "x" not in chosen:
            chosen.append("x")
        self.read_x = self.read_x or "x" in chosen
        gated = [g for g in self.gates if g in self.vectors]
        prevs = [v for v in self.vectors if v.endswith("_prev")]
        if gated and prevs and self.chance(0.15):  # the GRU's reset: W[r * a_prev, x]
            chosen.append(f"{self.pick(gated)} * {self.pick(prevs)}")
        self.rng.shuffle(chosen)
        text = f"W_{suffix}[{', '.join(chosen)}]"
        if not bias:
            return _E(text, ATOM, True)
        if self.chance(0.1):
            return _E(f"1 - {text} - b_{suffix}", SUM, True)
        return _E(f"{text} + b_{suffix}", SUM, True)

    def pre(self, depth=0, normed=False):
        """A pre-activation: a sum of an affine map and other terms, draining the demand.
        ``normed``: it goes into a layer norm, which removes a per-sample shift, so a scalar is
        multiplied by a vector there, never added (its gradient would be 0 up to rounding)."""
        terms = []
        biased = self.chance(0.65)
        terms.append(self.affine(bias=biased))
        for _ in range(int(self.rng.integers(0, 3 if depth == 0 else 2))):
            r = self.rng.random()
            if r < 0.25 and not biased:
                terms.append(self.affine(bias=False))  # bias-less maps side by side in one sum
            elif r < 0.45:  # an affine map in a sum of its own, with its own bias or none
                inner = self.affine(bias=self.chance(0.7))
                how = self.rng.random()
                if how < 0.4:
                    terms.append(_mul(self.name(), inner))
                elif how < 0.7:
                    terms.append(_E(f"{inner.at(PRODUCT)} / 2", PRODUCT, True))
                else:
                    terms.append(_call(self.pick(("tanh", "sin", "softsign")), inner))
            elif r < 0.7:
                p = self.param()
                terms.append(_mul(p, self.name()) if p is not None else self.vec(depth + 1))
            else:
                terms.append(self.vec(depth + 1))
        text = _sum(*terms)
        if depth == 0:  # every name still demanded is read here
            extra = []
            while self.demand:
                n = self.demand.pop(0)
                if n in self.params:
                    extra.append(_mul(_E(n), self.name()))
                elif n in self.scalars:
                    extra.append(_mul(_E(n), self.name()) if normed or self.chance(0.5)
                                 else _E(n))
                else:
                    extra.append(_mul(_E("0.5"), _E(n)) if self.chance(0.5) else _E(n))
            if extra:
                text = _sum(text, *extra)
        return text

    # -- elementwise expressions -------------------------------------------------------------

    def plain(self):
        """A vector expression without affine maps (may be written twice)."""
        u = self.name()
        if self.chance(0.3):
            u = _mul(u, self.name()) if len(self.vectors) > 1 else _call("tanh", u)
        return u

    def operand(self, depth):
        """A vector expression of moderate size."""
        if depth >= 2 or self.chance(0.4):
            return self.name()
        if self.chance(0.5):
            return self.affine(bias=self.chance(0.5))
        return self.vec(depth + 1)

    def vec(self, depth=1):
        """A vector expression: an activation, a function, a reduction, a product, a quotient."""
        kind = self.rng.random()
        if kind < 0.25:
            return _call(self.pick(ACTIVATIONS), self.operand(depth))
        if kind < 0.6:
            return self.function(self.operand(depth), depth)
        if kind < 0.7:
            p = self.param()
            return _mul(p if p is not None else self.name(), self.operand(depth))
        if kind < 0.8:  # mean: a per-sample scalar broadcast back over the units
            if self.chance(0.5):
                v = self.plain()
                return _E(f"{v.at(SUM)} - mean({v.text})", SUM)
            return _mul(self.mean_of(depth), self.name())
        if kind < 0.9:  # of an affine map (plus a vector): never of a scalar times a vector
            v = self.affine(bias=self.chance(0.5))
            if self.chance(0.3):
                v = _sum(v, _mul(_E("0.5"), self.name()))
            if self.chance(0.5):
                return _call("layer_norm", v)
            return _call("layer_norm", v, _E(self.pick(["0.01", "1e-3", "1/10"])))
        return self.divide(self.operand(depth))

    def mean_of(self, depth):
        """``mean(f(u))``, f nonlinear: never the mean of something whose mean is constant (a
        layer norm's output, ``v - mean(v)``), whose gradients would be 0 up to rounding."""
        return _call("mean", _call(self.pick(SMOOTH),
                                   self.operand(depth)))

    def divide(self, u):
        v = self.operand(2)
        form = self.pick(["2 + abs({v})", "1 + {v}**2", "sqrt(1 + {v}**2)",
                          "1 + exp(-abs({v}))"])
        v_text = v.at(PRODUCT + 1) if "**" in form else v.text
        return _E(f"{u.at(PRODUCT)} / ({form.format(v=v_text)})", PRODUCT, u.affine or v.affine)

    def function(self, u, depth):
        """A function of FUNCTIONS (or a power) applied in a numerically sane way."""
        name = self.pick(FUNCTIONS + ("pow", "div"))
        w = u.at(PRODUCT + 1)  # for u**2
        if name == "exp":
            form = self.rng.integers(5)
            if form == 0:
                return _E(f"exp(-abs({u.text}))", ATOM, u.affine)
            if form == 1:
                return _E(f"exp({self.pick(BOUNDED)}({u.text}))", ATOM, u.affine)
            if form == 2 and not u.affine:  # u written twice: names only
                v = self.plain()
                if v.text != u.text:
                    return _E(f"exp({u.at(SUM)} - max({u.text}, {v.text}))")
            if form == 3:
                return _E(f"exp(-{w}**2 / 2)", ATOM, u.affine)
            return _E(f"exp(cos({u.text}))", ATOM, u.affine)
        if name == "log":
            form = self.pick(["log(1 + {w}**2)", "log(2 + cos({u}))", "log(sigmoid({u}))",
                              "log(softplus({u}) + 1)"])
            return _E(form.format(u=u.text, w=w), ATOM, u.affine)
        if name == "log1p":
            form = self.pick(["log1p(sigmoid({u}))", "log1p({w}**2)", "log1p(exp(-abs({u})))"])
            return _E(form.format(u=u.text, w=w), ATOM, u.affine)
        if name == "sqrt":
            form = self.pick(["sqrt({w}**2 + 1)", "sqrt(1 + sigmoid({u}))",
                              "sqrt(softplus({u}) + 1/2)"])
            return _E(form.format(u=u.text, w=w), ATOM, u.affine)
        if name == "pow":
            form = self.pick(["(softplus({u}) + 1) ** (3/2)", "(1 + {w}**2) ** (-1/2)",
                              "(sigmoid({u}) + 0.5) ** 0.5", "(2 + sin({u})) ** (1/3)",
                              "{w}**3 / 3"])
            return _E(form.format(u=u.text, w=w), PRODUCT, u.affine)
        if name == "div":
            return self.divide(u)
        if name in ("max", "min"):
            v = self.operand(depth + 1)
            if v.text == u.text:
                v = _call("tanh", v) if not v.affine else _call("sin", self.name())
            return _call(name, u, v)
        return _call(name, u)  # abs, sin, cos

    # -- equations ------------------------------------------------------------------------------

    def gate(self):
        return _call(self.pick(GATING), self.pre())

    def bounded(self):
        """A bounded candidate: an earlier bounded target sometimes, else f(pre)."""
        if self.chance(0.15):
            return _call("layer_norm", self.pre(normed=True))
        return _call(self.pick(SATURATING), self.pre())

    def some_gate(self):
        """A gate name read by a mix: an earlier gate (demanded first), or an inline gate."""
        for k, n in enumerate(self.demand):
            if n in self.gates:
                return _E(self.demand.pop(k))
        if self.gates and self.chance(0.6):
            return _E(self.pick(self.gates))
        return self.gate()

    def state_equation(self, state):
        prev = f"{state}_prev"
        form = self.rng.integers(6)
        if form == 0:  # s = f(pre), bounded
            return _call(self.pick(SATURATING), self.pre())
        if form == 1:  # a convex mix: s = g * s_prev + (1 - g) * cand
            g = self.some_gate()
            cand = self.bounded()
            if not g.affine and self.chance(0.6):  # g written twice: a name
                return _E(f"{g.at(PRODUCT)} * {prev} + (1 - {g.text}) * {cand.at(PRODUCT)}", SUM)
            return _E(f"{prev} + {g.at(PRODUCT)} * ({cand.text} - {prev})", SUM)
        if form == 2:  # LSTM-like: c = f * c_prev + i * cand
            f = self.some_gate()
            i = self.some_gate()
            cand = self.bounded()
            p = self.param() if self.chance(0.5) else None
            scale = f"{p.text} * " if p is not None else ""
            return _E(f"{f.at(PRODUCT)} * {prev} + {scale}{i.at(PRODUCT)} * {cand.at(PRODUCT)}",
                      SUM)
        if form == 3:  # output: s = o * tanh(v)
            o = self.some_gate()
            inside = self.pre() if self.demand or self.chance(0.5) else self.name()
            return _mul(o, _call("tanh", inside))
        if form == 4:
            eps = [_E("0.1")] if self.chance(0.5) else []
            return _call("layer_norm", self.pre(normed=True), *eps)
        left, right = self.bounded(), _call(self.pick(SATURATING), self.pre())
        return _E(f"0.5 * ({left.text} + {right.text})", PRODUCT)

    def inter_equation(self, kind):
        if kind == "gate":
            return self.gate()
        if kind == "scalar":
            if self.chance(0.5):
                return self.mean_of(1)
            return _call("mean", _call(self.pick(SMOOTH),
                                       self.pre()))
        if kind == "norm":
            eps = [_E("1e-2")] if self.chance(0.4) else []
            return _call("layer_norm", self.pre(normed=True), *eps)
        form = self.rng.random()
        if form < 0.5:
            return _call(self.pick(ACTIVATIONS), self.pre())
        if form < 0.8:
            return self.function(self.pre(), 1)
        return _sum(self.vec(1), self.pre())

    def cell(self, label):
        rng = self.rng
        n_states = 1 + int(rng.integers(3))
        n_eq = int(rng.integers(max(2, n_states), 7))
        states = list(rng.choice(STATE_NAMES, n_states, replace=False))
        n_params = int(rng.choice([0, 0, 1, 1, 2]))
        self.params = list(rng.choice(PARAM_NAMES, n_params, replace=False))
        self.demand = list(self.params)
        kinds = ["state"] * (n_states - 1) + [
            self.pick(["gate", "gate", "gate", "cand", "cand", "scalar", "norm"])
            for _ in range(n_eq - n_states)]
        rng.shuffle(kinds)
        kinds.append("state")  # the last equation is a state: it reads what is left
        names = list(rng.permutation(GATE_LETTERS)) + list(rng.permutation(OTHER_NAMES))
        names = [str(n) for n in names if n not in states]
        self.vectors = [f"{s}_prev" for s in states]
        order = list(rng.permutation(states))
        equations = []
        for kind in kinds:
            self.affine_in_eq = 0
            if kind == "state":
                target = str(order.pop())
                self.target = target
                value = self.state_equation(target)
            else:
                if kind == "scalar":
                    target = next(n for n in SCALAR_NAMES if n not in self.scalars)
                else:
                    target = names.pop(0)
                self.target = target
                value = self.inter_equation(kind)
            equations.append(f"{target} = {value.text}")
            if kind == "scalar":
                self.scalars.append(target)
            else:
                self.vectors.append(target)
                if kind == "gate":
                    self.gates.append(target)
            if kind != "state":
                self.demand.append(target)
        assert not self.demand and self.read_x, (self.demand, self.read_x)
        if self.chance(0.2):  # the spec takes the equations in any order
            rng.shuffle(equations)
        quote = "'" if self.chance(0.2) else '"'
        lines = [f"# random cell {label}", f'name = "fuzz_{label}"']
        if self.chance(0.2):
            lines.append('input = "x"')
        lines.append(f"states = [{', '.join(f'{quote}{s}{quote}' for s in states)}]")
        if self.params or self.chance(0.1):
            lines.append(f"params = [{', '.join(f'{quote}{p}{quote}' for p in self.params)}]")
        if self.chance(0.2):
            lines.append(f'doc = "A random cell (tests/fuzz.py, {label})."')
        lines.append("equations = [")
        lines += [f"  {quote}{eq}{quote}," for eq in equations]
        lines.append("]")
        return "\n".join(lines) + "\n"


def random_cell(rng) -> str:
    """The TOML spec text of a random cell; ``rng``: a ``numpy.random.Generator`` or a seed."""
    label = f"seed_{rng}" if isinstance(rng, (int, np.integer)) else "cell"
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return _Generator(rng).cell(label)
