"""The SymPy printer of the generated modules' NumPy code."""

import sympy as sp
from sympy.printing.numpy import NumPyPrinter

from .activations import REGISTRY, is_activation, lookup


class matmul(sp.Function):  # noqa: N801 (a SymPy function, named as SymPy names them)
    """``matmul(a, b)`` prints as ``np.dot(a, b)``: a matrix product in an otherwise elementwise
    sum (for the small products of one step, ``np.dot`` costs half of ``@``)."""

    nargs = 2


class CodePrinter(NumPyPrinter):
    """NumPy code with ``np.`` as the module name and symrnn's activations.

    An activation with a NumPy form in the registry is called as a helper function of that name,
    defined once in the generated module (see ``helper``); the others print as ``np.<name>``.
    """

    def __init__(self, settings=None):
        super().__init__({"fully_qualified_modules": True, **(settings or {})})

    def _module_format(self, fqn, register=True):
        if fqn.startswith("numpy."):
            fqn = "np." + fqn[len("numpy."):]
        return super()._module_format(fqn, register)

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            entry = lookup(expr.func)
            name = entry.name  # the module's helper
            if entry.numpy is None:
                name = self._module_format("np." + entry.name)
            return f"{name}({self._print(expr.args[0])})"
        return super()._print(expr, **kwargs)

    def _print_positive(self, expr):
        return f"({self._print(expr.args[0])} > 0)"

    def _print_Max(self, expr):
        return self._fold("np.maximum", expr.args)

    def _print_Min(self, expr):
        return self._fold("np.minimum", expr.args)

    def _fold(self, ufunc, args):
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{ufunc}({text}, {self._print(arg)})"
        return text

    def _print_mean(self, expr):
        return f"np.mean({self._print(expr.args[0])}, axis=-1, keepdims=True)"

    def _print_unitsum(self, expr):
        return f"np.sum({self._print(expr.args[0])}, axis=-1, keepdims=True)"

    def _print_Heaviside(self, expr):  # Heaviside(0) = 1/2, SymPy's (activations: the kinks)
        return f"np.heaviside({self._print(expr.args[0])}, 0.5)"

    def _print_matmul(self, expr):
        left, right = (self._print(a) for a in expr.args)
        return f"np.dot({left}, {right})"

    def into(self, expr, out):
        """``expr`` computed by its last operation straight into the array ``out`` (a ufunc's
        ``out=``), saving a temporary and a copy; None when that operation is no ufunc."""
        if is_activation(expr) and lookup(expr.func).numpy is None:
            return f"np.{expr.func.__name__}({self._print(expr.args[0])}, out={out})"
        if isinstance(expr, sp.Mul):
            factors = expr.as_ordered_factors()
            if factors[0] == -1:
                return None  # a sign folded into a product prints as a unary minus
            divisors = [f for f in factors if isinstance(f, sp.Pow) and f.exp == -1]
            if divisors and len(factors) > 1:  # u/v: np.divide(u, v), not u*v**(-1.0)
                rest = sp.Mul(*(f for f in factors if f is not divisors[-1]))
                return (f"np.divide({self._print(rest)}, {self._print(divisors[-1].base)}, "
                        f"out={out})")
            rest = sp.Mul(*factors[:-1], evaluate=False) if len(factors) > 2 else factors[0]
            return f"np.multiply({self._print(rest)}, {self._print(factors[-1])}, out={out})"
        if isinstance(expr, sp.Add) and not any(isinstance(a, matmul) for a in expr.args):
            terms = self._as_ordered_terms(expr)
            last, ufunc = terms[-1], "np.add"
            if last.could_extract_minus_sign():
                last, ufunc = -last, "np.subtract"
            rest = sp.Add(*terms[:-1], evaluate=False) if len(terms) > 2 else terms[0]
            return f"{ufunc}({self._print(rest)}, {self._print(last)}, out={out})"
        return None

    def helper(self, entry, argument="z"):
        """The body expression of the module-level helper for activation ``entry``."""
        return self.doprint(entry.numpy(sp.Symbol(argument)))


class ShapePrinter(CodePrinter):
    """Prints sizes in the order they were written: ``H + D`` for ``[a_prev, x]``."""

    def __init__(self):
        super().__init__({"order": "none"})


def helpers_used(expressions):
    """The registry entries with a NumPy helper that the given expressions call, by name."""
    names = set()
    for expr in expressions:
        names |= {f.func.__name__ for f in expr.atoms(sp.Function) if is_activation(f)}
    return [REGISTRY[n] for n in sorted(names) if REGISTRY[n].numpy is not None]
