"""Printers for the derivation in the seed's notation: LaTeX (``LatexPrinter``) and Unicode text
(``StrPrinter``), each a subclass with one ``_print_X`` per display object of ``notation``; and
the derivation's printed parts (sections, legend, the equation of each code name), which both the
documents (``document``) and the code generator (``lower``) read."""

import sympy as sp
from sympy.core.symbol import Str
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pretty.pretty_symbology import pretty_symbol
from sympy.printing.str import StrPrinter

from .activations import is_activation, lookup
from .cell import Affine
from .notation import (
    WHOLE,
    AffineMap,
    Block,
    Delta,
    Grad,
    Mean,
    OutputGrad,
    UnitSum,
    Value,
    equations,
    is_units,
    sized,
    units,
    value,
)
from .reductions import UNITS, mean, unitsum
from .symbols import sym

MODIFIERS = ("tilde", "hat", "bar", "dot")  # c_tilde is c with a tilde, as SymPy's ctilde


def _sympy_name(name):
    """``c_tilde`` -> ``ctilde``, the spelling SymPy's printers turn into a modified letter."""
    head, _, tail = name.rpartition("_")
    return head + tail if head and tail in MODIFIERS else name


def _ordered_factors(expr):
    """A product's coefficient and factors, gradients first (``delta a (1 - Gamma_u)``)."""
    coeff, factors = expr.as_coeff_mul()
    grads = [f for f in factors if isinstance(f, (Delta, OutputGrad))]
    return coeff, grads + [f for f in factors if f not in grads]


def _fraction(expr):
    """``(coefficient, numerator factors, denominator factors)``: a factor with a negative
    exponent goes below the line with its exponent made positive (``a / sigma^2``)."""
    coeff, factors = _ordered_factors(expr)
    below = [f for f in factors if isinstance(f, sp.Pow) and f.exp.is_negative]
    above = [f for f in factors if f not in below]
    below = [sp.Pow(f.base, -f.exp) for f in below]
    return coeff, above, sorted(below, key=lambda f: not is_units(f))  # H first: 2 H σ


def _product(printer, factors, odot):
    """Factors joined by the elementwise product, H (a number of units: H, P, ...) first and
    joined by a space."""
    units = [printer._print(f) for f in factors if is_units(f)]
    vectors = [printer.parenthesize(f, PRECEDENCE["Mul"]) for f in factors if not is_units(f)]
    return " ".join(units + ([odot.join(vectors)] if vectors else []))


def _below(printer, coeff, below, odot):
    """The denominator: the number and H as a scalar prefix (``2 H``), then the vectors."""
    prefix = ([str(coeff.q)] if coeff.q != 1 else []) + [printer._print(f) for f in below
                                                         if is_units(f)]
    vectors = [printer.parenthesize(f, PRECEDENCE["Mul"]) for f in below if not is_units(f)]
    return " ".join(prefix + ([odot.join(vectors)] if vectors else []))


def _power_of_ten(number):
    """k where ``number`` is 10^-k (eps = 1e-5 prints as 10^{-5}), else None."""
    if number.is_Rational and number.p == 1 and number.q > 1:
        k = len(str(number.q)) - 1
        return k if number.q == 10**k else None
    return None


STEP = {-1: "t-1", 0: "t", 1: "t+1"}


class SeedLatexPrinter(LatexPrinter):
    r"""LaTeX in the seed's notation: ``\Gamma_f^{\langle t \rangle}``, ``\odot``, ``\sigma``."""

    def _name(self, name):
        head, _, rest = name.partition("_")
        if head == "z" and "_" in rest:  # the pre-activation of a node: z_{\Gamma_f}
            return f"z_{{{self._name(rest)}}}"
        return self._deal_with_super_sub(_sympy_name(name))

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            exp = kwargs.get("exp")
            head = lookup(expr.func).latex + (f"^{{{exp}}}" if exp else "")
            return rf"{head}\left({self._print(expr.args[0])}\right)"
        return super()._print(expr, **kwargs)

    def _print_positive(self, expr, exp=None):
        return rf"\mathbb{{1}}\left[{self._print(expr.args[0])} > 0\right]"

    def _print_Value(self, expr, exp=None):
        text = rf"{self._name(expr.args[0].name)}^{{\langle {STEP[int(expr.args[1])]} \rangle}}"
        return rf"\left({text}\right)^{{{exp}}}" if exp else text

    def _print_Delta(self, expr, exp=None):
        via = "" if expr.args[1] == WHOLE else f"_{{{STEP[int(expr.args[1])]}}}"
        text = rf"\delta{via} {self._print(expr.args[0])}"
        return rf"\left({text}\right)^{{{exp}}}" if exp else text

    def _print_OutputGrad(self, expr, exp=None):
        return r"\partial \mathcal{L} / \partial y^{\langle t \rangle}"

    def _print_AffineMap(self, expr, exp=None):
        weight, bias, *inputs = expr.args
        vectors = ", ".join(self._print(v) for v in inputs)
        text = (rf"{self._print(weight)} \left[{vectors}\right]" if len(inputs) > 1
                else rf"{self._print(weight)} {self.parenthesize(inputs[0], PRECEDENCE['Mul'])}")
        return text + (f" + {self._print(bias)}" if bias != 0 else "")

    def _print_Block(self, expr, exp=None):
        head, _, sub = expr.args[0].name.partition("_")
        label = self._name(expr.args[1].name)
        return f"{self._name(head)}_{{{sub + ',' if sub else ''}{label}}}"

    def _print_Project(self, expr, exp=None):
        block, grad = expr.args
        return rf"{self._print(block)}^{{\top}} {self._print(grad)}"

    def _print_SumOverT(self, expr, exp=None):
        summand = self.parenthesize(expr.args[0], PRECEDENCE["Mul"], strict=True)
        return rf"\sum\nolimits_{{t}} {summand}"

    def _print_Outer(self, expr, exp=None):
        grad, *inputs = expr.args
        vectors = "; ".join(self._print(v) for v in inputs)
        return rf"{self._print(grad)} \left[{vectors}\right]^{{\top}}"

    def _print_Grad(self, expr, exp=None):
        return rf"\partial \mathcal{{L}} / \partial {self._print(expr.args[0])}"

    def _print_Mul(self, expr):
        coeff, factors, below = _fraction(expr)
        if coeff < 0:
            return "- " + self._print_Mul(-expr)
        odot = r" \odot "
        if below:  # a fraction: elementwise products above and below the line
            top = _product(self, factors, odot)
            top = f"{coeff.p} {top}".strip() if coeff.p != 1 else (top or "1")
            return rf"\frac{{{top}}}{{{_below(self, coeff, below, odot)}}}"
        body = _product(self, factors, odot)
        return body if coeff == 1 else f"{self._print(coeff)} {body}"

    def _print_Pow(self, expr, exp=None):
        if expr.exp.is_negative and expr.exp.is_Rational:
            return self._print_Mul(expr)  # 1/x, as a fraction
        return super()._print_Pow(expr)

    def _print_Rational(self, expr):
        k = _power_of_ten(expr)
        return f"10^{{-{k}}}" if k else super()._print_Rational(expr)

    def _print_Maximum(self, expr, exp=None):
        return rf"\max\left({', '.join(self._print(a) for a in expr.args)}\right)"

    def _print_Minimum(self, expr, exp=None):
        return rf"\min\left({', '.join(self._print(a) for a in expr.args)}\right)"

    def _print_exp(self, expr, exp=None):
        text = rf"\exp\left({self._print(expr.args[0])}\right)"
        return rf"{text}^{{{exp}}}" if exp else text

    def _print_mean(self, expr, exp=None):
        return rf"\frac{{1}}{{H}} \sum_{{j}} \left[{self._print(expr.args[0])}\right]_{{j}}"

    def _print_unitsum(self, expr, exp=None):
        return rf"\sum_{{j}} \left[{self._print(expr.args[0])}\right]_{{j}}"

    def _print_Mean(self, expr, exp=None):
        n = self._print(expr.args[1])
        return rf"\frac{{1}}{{{n}}} {self._print_UnitSum(expr)}"

    def _print_UnitSum(self, expr, exp=None):
        n = self._print(expr.args[1])
        return rf"\sum_{{j=1}}^{{{n}}} \left[{self._print(expr.args[0])}\right]_{{j}}"


SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
SUBSCRIPT = str.maketrans("t+-1", "ₜ₊₋₁")


class SeedTextPrinter(StrPrinter):
    """Unicode text in the seed's notation, for terminals and docstrings: ``Γ_f⟨t⟩ ⊙ c⟨t−1⟩``."""

    def _name(self, name):
        head, _, sub = _sympy_name(name).partition("_")
        if head == "z" and "_" in sub:  # the pre-activation of a node: z_Γ_f
            return f"z_{self._name(sub)}"
        return pretty_symbol(head) + (f"_{sub}" if sub else "")

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            name = lookup(expr.func).text
            return f"{name}{kwargs.get('exp', '')}({self._print(expr.args[0])})"
        return super()._print(expr, **kwargs)

    def _print_Pow(self, expr, rational=False):
        if expr.exp.is_negative and expr.exp.is_Rational:
            return self._print_Mul(expr)  # 1/x, as a fraction
        if not (expr.exp.is_Integer and expr.exp > 0):
            return super()._print_Pow(expr, rational)
        exp = str(expr.exp).translate(SUPERSCRIPT)
        if is_activation(expr.base):
            return self._print(expr.base, exp=exp)  # tanh²(c⟨t⟩)
        return self.parenthesize(expr.base, PRECEDENCE["Pow"], strict=True) + exp

    def _print_positive(self, expr):
        return f"𝟙[{self._print(expr.args[0])} > 0]"

    def _print_Value(self, expr):
        return f"{self._name(expr.args[0].name)}⟨{STEP[int(expr.args[1])].replace('-', '−')}⟩"

    def _print_Delta(self, expr):
        via = "" if expr.args[1] == WHOLE else STEP[int(expr.args[1])].translate(SUBSCRIPT)
        return f"δ{via} {self._print(expr.args[0])}"

    def _print_OutputGrad(self, expr):
        return "∂ℒ/∂y⟨t⟩"

    def _print_AffineMap(self, expr):
        weight, bias, *inputs = expr.args
        vectors = ", ".join(self._print(v) for v in inputs)
        text = (f"{self._print(weight)} [{vectors}]" if len(inputs) > 1
                else f"{self._print(weight)} {self.parenthesize(inputs[0], PRECEDENCE['Mul'])}")
        return text + (f" + {self._print(bias)}" if bias != 0 else "")

    def _print_Symbol(self, expr):
        return self._name(expr.name)

    def _print_Block(self, expr):
        return f"{self._print(expr.args[0])}[{self._name(expr.args[1].name)}]"

    def _print_Project(self, expr):
        block, grad = expr.args
        return f"{self._print(block)}ᵀ {self._print(grad)}"

    def _print_SumOverT(self, expr):
        return f"Σ_t {self.parenthesize(expr.args[0], PRECEDENCE['Mul'], strict=True)}"

    def _print_Outer(self, expr):
        grad, *inputs = expr.args
        return f"{self._print(grad)} [{'; '.join(self._print(v) for v in inputs)}]ᵀ"

    def _print_Grad(self, expr):
        return f"∂ℒ/∂{self._print(expr.args[0])}"

    def _print_Mul(self, expr):
        coeff, factors, below = _fraction(expr)
        if coeff < 0:
            return "-" + self._print_Mul(-expr)
        body = _product(self, factors, " ⊙ ")
        if coeff.p != 1 or not below:
            body = (body if coeff.p == 1 else f"{coeff.p} {body}".strip()) if below else (
                body if coeff == 1 else f"{self._print(coeff)} {body}")
        if not below:
            return body
        text = _below(self, coeff, below, " ⊙ ")
        return f"{body or '1'} / {text if len(below) + (coeff.q != 1) == 1 else '(' + text + ')'}"

    def _print_mean(self, expr):
        return f"(1/H) Σ_j [{self._print(expr.args[0])}]_j"

    def _print_unitsum(self, expr):
        return f"Σ_j [{self._print(expr.args[0])}]_j"

    def _print_Mean(self, expr):
        return f"(1/{self._print(expr.args[1])}) {self._print_UnitSum(expr)}"

    def _print_UnitSum(self, expr):
        return f"Σ_{{j=1..{self._print(expr.args[1])}}} [{self._print(expr.args[0])}]_j"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_Maximum(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Minimum(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Heaviside(self, expr):
        return f"θ({self._print(expr.args[0])})"


def latex(expr):
    return SeedLatexPrinter().doprint(expr)


def text(expr):
    return SeedTextPrinter().doprint(expr)


# -- the derivation's printed parts, shared by the documents (document.py) and the code generator
# (lower.py: the docstring and the equation above each line) ----------------------------------

TITLES = ("Forward, at each step t", "Backward, at each step t from T down to 1",
          "Parameter gradients")


WORDS = {  # the few symbols the legend's prose needs, per printer
    "text": {"odot": "⊙", "sigma": "σ", "loss": "ℒ = Σ_t ℒ⟨t⟩", "sum": "Σ_t"},
    "latex": {"odot": r"$\odot$", "sigma": r"$\sigma$", "sum": r"$\sum_t$",
              "loss": r"$\mathcal{L} = \sum_t \mathcal{L}^{\langle t \rangle}$"},
}


def _listed(things):
    """``a``, ``a and b``, ``a, b and c``."""
    return things[0] if len(things) == 1 else f"{', '.join(things[:-1])} and {things[-1]}"


def _sizes(cell, eq, math):
    """The legend's item on sizes: each vector the derivation shows, grouped by its size; the
    vectors of H units, the most, as every other vector."""
    rows = [part for row in eq.forward + eq.backward + eq.sums for part in row]
    shown = set().union(*(r.atoms(Value) for r in rows)) | {
        s for r in rows for s in r.free_symbols if s.name in cell.vectors}
    order = [value(s, k) for s in cell.states for k in (0, -1)]
    order += [value(n.out.name) for n in cell.nodes] + [value(v) for v in cell.inputs]
    order += [sym(v) for v in cell.vectors]
    groups = {}
    for item in dict.fromkeys(order):
        if item in shown:
            name = item.name if isinstance(item, sp.Symbol) else item.args[0].name
            groups.setdefault(cell.size(name), []).append(math(item))
    vectors = [f"{_listed(members)} {'has' if len(members) == 1 else 'have'} "
               f"{math(units(size))}" for size, members in groups.items()
               if size not in ("H", 1)]
    if "H" in groups:
        vectors.append(f"every {'other ' if vectors else ''}vector has {math(units('H'))}")
    text = f"Sizes (numbers of units): {_listed(vectors)}"
    if 1 in groups:
        text += (f"; {_listed(groups[1])} {'is' if len(groups[1]) == 1 else 'are each'} one number "
                 f"per sample, which broadcasts over the units where a vector expression reads it")
    return (f"{text}. A gradient {math(Delta(value('v'), sp.nan))} has the size of v, and a "
            f"weight {math(sym('W_k'))} a row for each unit of {math(value('z_k'))} and a column "
            f"for each unit of the vectors it reads.")


def _sums(cell, eq, math):
    """The legend's item on the sums over the units in a sized cell (None if it has none)."""
    rows = [part for row in eq.forward + eq.backward + eq.sums for part in row]
    found = set().union(*(r.atoms(Mean, UnitSum) for r in rows))
    if not found:
        return None
    means = {f.args[1] for f in found if isinstance(f, Mean)}
    n = sorted(means or {f.args[1] for f in found}, key=lambda u: (u != UNITS, u.name))[0]
    others = sorted({f.args[1] for f in found} - {n}, key=lambda u: (u != UNITS, u.name))
    likewise = (f" (and likewise over {_listed([math(o) for o in others])} units)" if others
                else "")
    v, mu = value("v"), value("mu")
    if not means:
        return f"{math(UnitSum(v, n))} is the sum of a vector v over its {math(n)} units{likewise}."
    text = (f"{math(Mean(v, n))} is the mean of a vector v of {math(n)} units and "
            f"{math(UnitSum(v, n))} their sum{likewise}; a mean {math(mu)} of v sends "
            f"{math(Delta(mu, sp.nan) / n)} back to every unit of v")
    if any(node.out.name.startswith("mu_") for node in cell.nodes
           if not isinstance(node, Affine) and isinstance(node.expr, mean)):
        text += (f". In a layer norm, {math(value('mu_k'))} and {math(value('sigma_k'))} are "
                 f"the mean and the standard deviation of the vector it normalises")
    return text + "."


def _legend(derivation, eq, math, words):
    """The notation, each item with its formulas printed by ``math``."""
    cell = derivation.cell
    state, weight = cell.states[0], next((a for a in cell.affines if len(a.inputs) > 1), None)
    a_t, a_prev = value(state), value(state, -1)
    inputs = _listed([math(value(v)) for v in cell.inputs])
    items = [
        f"{inputs} {'is the input' if len(cell.inputs) == 1 else 'are the inputs'} at step t, "
        f"{math(a_t)} the state {state} at step t and "
        f"{math(a_prev)} at the step before; the output is {math(value('y'))} = {math(a_t)}.",
        f"Products of vectors are elementwise ({words['odot']}); {words['sigma']} is the "
        f"logistic sigmoid.",
    ]
    if sized(cell):
        items.insert(1, _sizes(cell, eq, math))
    for given, other, _ in cell.requires:
        reading = [math(value(v)) for v in cell.inputs if cell.size(v) == given]
        items.insert(2, f"The cell needs {math(units(given))} = {math(units(other))}: "
                        f"{_listed(reading)} {'is' if len(reading) == 1 else 'are'} read "
                        f"elementwise with vectors of {math(units(other))} units." if reading
                     else f"The cell needs {math(units(given))} = {math(units(other))}.")
    if weight is not None:
        u, v, W = Str("u"), Str("v"), sym("W_k")
        items.append(
            f"{math(AffineMap(W, 0, value('u'), value('v')))} applies {math(W)} to the "
            f"concatenation of u and v: it is {math(Block(W, u))} {math(value('u'))} + "
            f"{math(Block(W, v))} {math(value('v'))}, where {math(Block(W, u))} holds the "
            f"columns of {math(W)} that read u. "
            f"{math(value('z_k'))} is the pre-activation of gate k: the affine map inside its "
            f"activation.")
    if sized(cell):
        if (sums := _sums(cell, eq, math)) is not None:
            items.append(sums)
    elif cell.scalars:
        v = value("v")
        items.append(
            f"{math(mean(v))} is the mean of v over its H units and {math(unitsum(v))} their "
            f"sum: one number per sample, which broadcasts over the units where a vector "
            f"expression reads it (a mean {math(value('mu'))} sends "
            f"{math(Delta(value('mu'), sp.nan) / UNITS)} back to every unit). In a layer norm, "
            f"{math(value('mu_k'))} and "
            f"{math(value('sigma_k'))} are the mean and the standard deviation of the vector "
            f"it normalises.")
    items += [
        f"{math(Delta(value('v'), sp.nan))} = {math(Grad(value('v')))} is the gradient of the "
        f"loss {words['loss']} with respect to v at step t; {math(Delta(a_t, 1))} is the part "
        f"of it that flows back from step t+1 (at t = T: the gradient with respect to the final "
        f"state), and {math(Delta(a_prev, 0))} the part that step t sends back to step t-1.",
        f"{words['sum']} runs over the steps t = 1, ..., T (and over the batch).",
    ]
    return items


def parts(derivation, fmt):
    """The printed sections [(title, [(lhs, rhs), ...]), ...] and the legend's items."""
    eq = equations(derivation)
    printer = SeedTextPrinter() if fmt == "text" else SeedLatexPrinter()
    if fmt == "text":
        def math(e):
            return printer.doprint(e)
    else:
        def math(e):
            return f"${printer.doprint(e)}$"
    sections = [(title, [(printer.doprint(lhs), printer.doprint(rhs)) for lhs, rhs in rows])
                for title, rows in zip(TITLES, (eq.forward, eq.backward, eq.sums), strict=True)]
    words = WORDS["text" if fmt == "text" else "latex"]
    return sections, _legend(derivation, eq, math, words)


def notes(derivation):
    """{code name: its equation as the text derivation prints it}, for every row of the forward
    and backward sections: "dz_f" -> "δ z_f⟨t⟩ = δ Γ_f⟨t⟩ ⊙ Γ_f⟨t⟩ ⊙ (1 - Γ_f⟨t⟩)"."""
    eq, text = equations(derivation), SeedTextPrinter().doprint
    return {eq.names[lhs]: f"{text(lhs)} = {text(rhs)}" for lhs, rhs in eq.forward + eq.backward}


def code_names(derivation):
    """How the text notation maps to the names in a generated module, as one sentence."""
    eq, text = equations(derivation), SeedTextPrinter().doprint
    state = derivation.cell.states[0]
    pairs = [(value(state), state), (value(state, -1), f"{state}_prev"),
             (Delta(value("v"), sp.nan), "dv"), (Delta(value(state), 1), f"d{state}_next"),
             (Delta(value(state, -1), 0), f"d{state}_prev")]
    pairs += [(block, name) for block, name, _ in eq.blocks[:1]]
    names = ", ".join(f"{text(shown)} is {name}" for shown, name in pairs)
    return f"In the code {names}" + (", and so on." if eq.blocks else ".")
