"""Random recurrent cells, as TOML spec texts, for the fuzz tests (tests/test_fuzz.py).

A compiler is trusted when random programs agree: every cell drawn here is parsed
(``symrnn.spec.parse_spec``), derived, verified, generated for both backends and checked against
finite differences. ``random_cell(rng)`` (a ``numpy.random.Generator`` or an int seed) returns the
text of one cell; the same seed always gives the same text.

The grammar the generator covers (tests/test_fuzz.py checks that the default cells use all of it):

- 1-3 states from ``a, c, h, m, s`` (the first is the output), 2-6 equations in all, forming a
  random DAG: an equation reads ``x`` (in affine maps; elementwise too, below), every
  ``<state>_prev``, the other inputs (below) and the targets of earlier equations (gates,
  candidates, per-sample scalars, states already updated in the step); every state is updated
  once, every target, every declared param and every input is used, and ``x`` is read by at
  least one affine map. Sometimes the equations are written out of order
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
  minus;
- vectors of more than one size (issue 14; each construct drawn from a stream of its own, so a
  cell with none of them is the text it was before them): with probability ``P_SIZED`` one
  state (two of three) gets a size of its own, ``P`` (or ``P`` and ``R``), declared in
  ``sizes = { a = "P" }``, and one state keeps H. Every equation then has a size, H or P, and
  reads elementwise only vectors of its size (and per-sample scalars, which broadcast): a P
  state's own equation, gates and candidates of size P (their affine maps' outputs infer P),
  elementwise params of size P (a param is read once, so it takes the size of the equation that
  reads it), ``layer_norm`` over P; a mean's argument may have another size than its equation
  (``mean(tanh(a_prev))`` over P in an H equation). Affine maps read vectors of every size; a
  P state may be a projection without bias, ``a = W_a[h]`` (LSTMP). A demanded vector of
  another size than the equation that must read it is read by a bias-less affine map of its
  own, ``0.5 * W_k2[...]``. Sometimes the table also declares sizes the inference finds anyway
  (a target's, ``c = "H"``), or is a ``[sizes]`` table at the end;
- more per-step inputs (probability ``P_INPUTS``): one or two of ``dt, tau, u_t, q``, declared
  in ``inputs = ["x", "dt"]`` with a size each: 1 (one number per sample: read elementwise as
  ``dt * v``, ``exp(-dt**2 / 2) * v``, ``w * dt``, ``tanh(dt)``, ..., by affine maps
  ``W_k[a_prev, dt]``, and in GRU-D's decay ``exp(-relu(W_k[dt] + b_k)) * a_prev``), H or a
  state's P (read as any vector of that size), or E, a size only inputs have (read by affine
  maps, never beside x, whose D could not be told from E then, and inside means);
- x read elementwise as an H-vector (probability ``P_X_ELEMENTWISE``; the module then needs
  D = H, ``Cell.requires``, and the tests give it D = H).

Every size a cell has is in some parameter's shape, so a module can read it off the params
(``lower`` refuses a cell otherwise): H and P are the output sizes of the affine maps in the
states' equations, D and E the column counts of maps that never read both.

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
INPUT_NAMES = ("dt", "tau", "u_t", "q")  # per-step inputs beside x
STATE_SIZES = ("P", "R")  # named sizes of states (a projection's P)
INPUT_SIZE = "E"  # a named size only inputs have: read by affine maps (and means) only

# How often a cell gets each construct of issue 14 (drawn from a stream of their own, so a cell
# without any of them is the same text as before they existed).
P_SIZED = 0.3  # a state of another size (P), and equations of that size
P_INPUTS = 0.3  # one or two more per-step inputs (size 1, H, P or E)
P_X_ELEMENTWISE = 0.15  # x read elementwise beside H-vectors (the module then needs D = H)

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
    def __init__(self, rng, features=None):
        self.rng = rng
        self.features = features or {}  # "sizes", "inputs", "x_elementwise": which to use
        self.vectors = []  # vectors an equation may read: previous states, earlier targets, ...
        self.size_of = {}  # vector -> its size ("H", "P", "R", "E"); H unless listed
        self.size = "H"  # the size of the equation being written: its vectors have this size
        self.gates = []  # earlier targets with values in [0, 1]
        self.scalars = []  # earlier targets that are per-sample scalars (means)
        self.inputs1 = []  # more inputs of size 1 (one number per sample and step, like dt)
        self.affine_only = set()  # inputs of size E: read by affine maps (and inside means)
        self.declared = {}  # the TOML's sizes table
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

    def pool(self, size=None):
        """The vectors of one size (the equation's): what it may read elementwise."""
        size = size or self.size
        return [v for v in self.vectors if self.size_of.get(v, "H") == size]

    def name(self, *, scalars=False):
        """A name to read: a demanded one first, else any vector (or scalar) of the
        equation's size."""
        vectors = self.pool()
        for k, n in enumerate(self.demand):
            if (n in vectors and n not in self.affine_only) or (scalars and n in self.scalars):
                return _E(self.demand.pop(k))
        pool = vectors + (self.scalars if scalars and self.chance(0.3) else [])
        return _E(self.pick(pool))

    def sizes(self):
        """The sizes an equation (or a mean's argument) may have: those with vectors to read."""
        return [z for z in ("H",) + STATE_SIZES + (INPUT_SIZE,) if self.pool(z)]

    def param(self):
        """A demanded param, or None."""
        for k, n in enumerate(self.demand):
            if n in self.params:
                return _E(self.demand.pop(k))
        return None

    # -- affine maps ----------------------------------------------------------------------------

    def affine(self, bias, reads=()):
        """``W_k[v1, ...]`` (+ ``b_k``): the map, and whether x is among its inputs. It reads
        vectors of any size (and inputs of size 1), ``reads`` among them; its output has the
        equation's size."""
        self.n_affine += 1
        self.affine_in_eq += 1
        suffix = self.target if self.affine_in_eq == 1 else f"{self.target}{self.affine_in_eq}"
        pool = ["x"] + [v for v in self.vectors if v != "x"] + self.inputs1
        count = 1 + int(self.rng.integers(3))
        chosen = list(reads)
        for n in list(self.demand):  # a demanded vector read here directly (a deep transition)
            if n in pool and n != "x" and len(chosen) < count and self.chance(0.6):
                chosen.append(n)
                self.demand.remove(n)
        while len(chosen) < min(count, len(pool)):
            v = self.pick(pool)
            if v not in chosen:
                chosen.append(v)
        if not self.read_x and "x" not in chosen:
            chosen.append("x")
        sized = [n for n in chosen if n in self.affine_only]
        if sized and "x" in chosen:  # W[x, q] would have D + E columns: neither read off alone
            if self.read_x:
                chosen.remove("x")
            else:
                chosen = [n for n in chosen if n not in sized]
                self.demand[:0] = [n for n in sized if n not in self.demand]  # later
        self.read_x = self.read_x or "x" in chosen
        vectors = self.pool()
        gated = [g for g in self.gates if g in vectors]
        prevs = [v for v in vectors if v.endswith("_prev")]
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
            if self.inputs1 and self.chance(0.3):  # an input of size 1 read elementwise
                terms.append(self.scalar_input(normed))
                continue
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
            extra, others = [], []
            while self.demand:
                n = self.demand.pop(0)
                if n in self.params:  # its first and only read: it takes the equation's size
                    extra.append(_mul(_E(n), self.name()))
                elif n in self.scalars or n in self.inputs1:
                    extra.append(_mul(_E(n), self.name()) if normed or self.chance(0.5)
                                 else _E(n))
                elif n in self.pool() and n not in self.affine_only:
                    extra.append(_mul(_E("0.5"), _E(n)) if self.chance(0.5) else _E(n))
                else:  # a vector of another size: read by an affine map of its own
                    others.append(n)
            if others:  # in a product, so that a bias in the sum stays its map's
                extra.append(_mul(_E("0.5"), self.affine(bias=False, reads=others)))
            if extra:
                text = _sum(text, *extra)
        return text

    def scalar_input(self, normed):
        """A term reading an input of size 1 elementwise (``dt * v``, ``exp(-dt**2 / 2) * v``,
        ``w * dt``, ``tanh(dt)``); under a layer norm never alone (a per-sample shift)."""
        for k, n in enumerate(self.demand):
            if n in self.inputs1:
                t = self.demand.pop(k)
                break
        else:
            t = self.pick(self.inputs1)
        form = self.pick(["{t}", "exp(-{t}**2 / 2)", "tanh({t})", "sigmoid({t})",
                          "log1p({t}**2)", "{t} / (1 + abs({t}))"])
        u = _E(form.format(t=t), PRODUCT if "/" in form else ATOM)
        p = self.param()
        if p is not None:
            return _mul(p, u)
        if not normed and self.chance(0.3):
            return u
        return _mul(u, self.name())

    # -- elementwise expressions -------------------------------------------------------------

    def plain(self):
        """A vector expression without affine maps (may be written twice)."""
        u = self.name()
        if self.chance(0.3):
            u = _mul(u, self.name()) if len(self.pool()) > 1 else _call("tanh", u)
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
        layer norm's output, ``v - mean(v)``), whose gradients would be 0 up to rounding. In a
        cell of several sizes u may have another size than the equation (a mean over P)."""
        f = self.pick(SMOOTH)
        size = self.size
        if self.features.get("sizes") or self.affine_only:
            self.size = self.pick(self.sizes())
        u = self.operand(depth)
        self.size = size
        return _call("mean", _call(f, u))

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
        """A gate name read by a mix: an earlier gate of the equation's size (demanded first),
        or an inline gate."""
        gates = [g for g in self.gates if self.size_of.get(g, "H") == self.size]
        for k, n in enumerate(self.demand):
            if n in gates:
                return _E(self.demand.pop(k))
        if gates and self.chance(0.6):
            return _E(self.pick(gates))
        return self.gate()

    def projection(self):
        """``W_k[v, ...]``, no bias: a state of another size projected from vectors (the
        demanded ones, else vectors of H), as LSTMP's ``a = W_p[h]``."""
        reads = [n for n in self.demand if n not in self.params and n not in self.scalars]
        for n in reads:
            self.demand.remove(n)
        if not reads:
            reads = [self.pick(self.pool("H"))]
        return self.affine(bias=False, reads=reads)

    def state_equation(self, state, last=False):
        prev = f"{state}_prev"
        if self.size != "H" and self.chance(0.35) and not (last and any(
                n in self.params or n in self.scalars for n in self.demand)):
            return self.projection()
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

    def decay(self):
        """GRU-D's decay of a vector by an input of size 1 (``dt``): ``exp(-relu(W_k[dt] +
        b_k)) * v`` or ``exp(-softplus(w * dt)) * v``, in (0, 1] times v."""
        t = next((n for n in self.demand if n in self.inputs1), None) or self.pick(self.inputs1)
        if t in self.demand:
            self.demand.remove(t)
        p = self.param()
        if p is not None and self.chance(0.5):
            rate = _E(f"{self.pick(['relu', 'softplus'])}({p.text} * {t})")
        else:
            rate = _call(self.pick(["relu", "softplus"]), self.affine(bias=True, reads=[t]))
            if p is not None:
                self.demand.insert(0, p.text)
        return _mul(_E(f"exp(-{rate.text})"), self.name())

    def inter_equation(self, kind):
        if kind == "gate":
            return self.gate()
        if kind == "decay":
            return self.decay()
        if kind == "scalar":
            if self.chance(0.5):
                return self.mean_of(1)
            f = self.pick(SMOOTH)
            size = self.size
            if self.features.get("sizes") or self.affine_only:
                self.size = self.pick(self.sizes())
            u = self.pre()
            self.size = size
            return _call("mean", _call(f, u))
        if kind == "norm":
            eps = [_E("1e-2")] if self.chance(0.4) else []
            return _call("layer_norm", self.pre(normed=True), *eps)
        form = self.rng.random()
        if form < 0.5:
            return _call(self.pick(ACTIVATIONS), self.pre())
        if form < 0.8:
            return self.function(self.pre(), 1)
        return _sum(self.vec(1), self.pre())

    def sized_states(self, states):
        """Give one state (two of three) a size of its own, P (or P and R); one keeps H."""
        rng = self.rng
        k = 1 if len(states) == 2 or self.chance(0.6) else 2
        chosen = [str(s) for s in rng.choice(states, k, replace=False)]
        names = ["P", "P"] if k == 1 or self.chance(0.5) else ["P", "R"]
        for s, size in zip(chosen, names, strict=False):
            self.declared[s] = size
            self.size_of[s] = self.size_of[f"{s}_prev"] = size

    def more_inputs(self):
        """One or two inputs beside x, of size 1, H, a state's size (P) or E, demanded."""
        rng = self.rng
        names = [str(n) for n in rng.permutation(INPUT_NAMES)][:1 + int(rng.integers(2))]
        state_sizes = sorted(set(self.declared.values()))
        for n in names:
            size = self.pick([1, 1, "H", INPUT_SIZE] + state_sizes)
            self.declared[n] = size
            if size == 1:
                self.inputs1.append(n)
            else:
                self.vectors.append(n)
                self.size_of[n] = size
                if size == INPUT_SIZE:
                    self.affine_only.add(n)
            self.demand.append(n)
        return names

    def cell(self, label):
        rng = self.rng
        sized = self.features.get("sizes")
        n_states = 1 + int(rng.integers(3))
        if sized:
            n_states = max(n_states, 2)  # one state of H, one of P
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
        if sized:
            self.sized_states(states)
        inputs = self.more_inputs() if self.features.get("inputs") else []
        if self.features.get("x_elementwise"):  # an H-vector as well (the module needs D = H)
            self.vectors.append("x")
            self.demand.append("x")
        if self.inputs1 and "decay" not in kinds and self.chance(0.5):
            inter = [k for k, kind in enumerate(kinds) if kind != "state"]
            if inter:
                kinds[self.pick(inter)] = "decay"
        order = list(rng.permutation(states))
        equations = []
        for position, kind in enumerate(kinds):
            self.affine_in_eq = 0
            self.size = "H"
            if kind == "state":
                target = str(order.pop())
                self.target = target
                self.size = self.size_of.get(target, "H")
                value = self.state_equation(target, last=position == len(kinds) - 1)
            else:
                if kind == "scalar":
                    target = next(n for n in SCALAR_NAMES if n not in self.scalars)
                else:
                    target = names.pop(0)
                self.target = target
                if sized and self.chance(0.45):  # an equation of the other size
                    self.size = self.pick([z for z in self.sizes() if z in STATE_SIZES])
                value = self.inter_equation(kind)
            equations.append(f"{target} = {value.text}")
            if kind == "scalar":
                self.scalars.append(target)
            else:
                self.vectors.append(target)
                self.size_of[target] = self.size
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
        if inputs:
            lines.append(f"inputs = [{', '.join(f'{quote}{n}{quote}' for n in ['x'] + inputs)}]")
        declared = self.declared
        if declared and self.chance(0.3):  # a size the inference finds anyway, declared too
            more = [v for v in self.vectors if v not in declared and v != "x"
                    and not v.endswith("_prev") and v in self.size_of]
            for v in more[:int(rng.integers(1, 3))] if more else []:
                declared = {**declared, v: self.size_of[v]}
        table = [f"{v} = {size if size == 1 else quote + size + quote}"
                 for v, size in declared.items()]
        header = declared and self.chance(0.2)  # a [sizes] table at the end, else inline
        if declared and not header:
            lines.append(f"sizes = {{ {', '.join(table)} }}")
        if self.chance(0.2):
            lines.append(f'doc = "A random cell (tests/fuzz.py, {label})."')
        lines.append("equations = [")
        lines += [f"  {quote}{eq}{quote}," for eq in equations]
        lines.append("]")
        if header:
            lines += ["", "[sizes]"] + table
        return "\n".join(lines) + "\n"


def random_cell(rng) -> str:
    """The TOML spec text of a random cell; ``rng``: a ``numpy.random.Generator`` or a seed."""
    label = f"seed_{rng}" if isinstance(rng, (int, np.integer)) else "cell"
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    which = rng.spawn(1)[0]  # the constructs of issue 14: a stream of their own
    features = {"sizes": which.random() < P_SIZED, "inputs": which.random() < P_INPUTS,
                "x_elementwise": which.random() < P_X_ELEMENTWISE}
    return _Generator(rng, features).cell(label)
