r"""The registry of activations: the one place that knows each activation.

Every activation is a ``sympy.Function`` subclass whose derivative is written in terms of its own
output ``y`` (``sigmoid' = y (1 - y)``), so a derivative of a cached gate comes out as
``Gamma_f*(1 - Gamma_f)`` once the application is replaced by the gate's symbol. Each entry says:

- ``grad``:  the derivative, as a function of the output ``y`` and the argument ``z``; written in
  ``y`` alone where it can be (``sigmoid' = y (1 - y)``: the backward reuses the cached gate), else
  in ``z`` (``softplus' = sigmoid(z)``: the backward reads the argument, cached by the forward);
- ``numpy``: the NumPy form, as a SymPy expression of the argument ``z`` printed by the code printer
  (``None``: the printer emits ``np.<name>`` directly);
- ``latex``, ``text``: its name in the derivation printers (``\sigma``, ``σ``);
- ``definition``: the function written with one exponential (``exp`` is given), from which
  ``symrnn verify`` differentiates independently of ``grad``;
- ``torch``: PyTorch code of the argument ``{}`` (``"torch.tanh({})"``), for
  ``symrnn.torch_cell``; None: no PyTorch form;
- ``tanh_form``: ``(inside, scale, shift)`` when the function is ``scale*tanh(inside*z) + shift``
  (``sigmoid(z) = tanh(z/2)/2 + 1/2``): the lowering then activates it with one ``np.tanh`` call
  shared with other such gates, the ``inside`` factor folded into the prepared weights.
"""

from dataclasses import dataclass
from typing import Callable

import sympy as sp
from sympy.codegen.cfunctions import expm1, log1p


@dataclass(frozen=True)
class Activation:
    name: str
    function: type  # the sympy.Function subclass
    grad: Callable[[sp.Expr, sp.Expr], sp.Expr]  # (y, z) -> the derivative
    numpy: Callable[[sp.Expr], sp.Expr] | None
    latex: str
    text: str  # the name in Unicode text
    definition: Callable  # (z, exp) -> the function from its definition, with a single exp
    doc: str  # one line for the generated helper's docstring
    tanh_form: tuple[sp.Rational, sp.Rational, sp.Rational] | None  # (inside, scale, shift)
    torch: str | None = None  # PyTorch code, the argument as {}

    @property
    def from_output(self):
        """Whether the derivative is written in the output alone (then the backward never needs
        the argument)."""
        y, z = sp.Dummy("y"), sp.Dummy("z")
        return z not in sp.sympify(self.grad(y, z)).free_symbols


REGISTRY: dict[str, Activation] = {}


def activation(name, *, grad, definition, latex, text=None, numpy=None, doc="", tanh_form=None,
               torch=None):
    """Register an activation and return its SymPy function class."""

    def fdiff(self, argindex=1):
        if argindex != 1:
            raise sp.ArgumentIndexError(self, argindex)
        return grad(self, self.args[0])

    function = type(name, (sp.Function,), {"nargs": 1, "fdiff": fdiff})
    REGISTRY[name] = Activation(name, function, grad, numpy, latex, text or name, definition,
                                doc, tanh_form and tuple(sp.S(v) for v in tanh_form), torch)
    return function


sigmoid = activation("sigmoid", grad=lambda y, z: y * (1 - y), latex=r"\sigma", text="σ",
                     definition=lambda z, exp: 1 / (1 + exp(-z)),
                     numpy=lambda z: (sp.tanh(z / 2) + 1) / 2,
                     doc="1/(1 + exp(-z)) in its tanh form: never overflows, float32 stays float32",
                     tanh_form=(sp.S(1) / 2, sp.S(1) / 2, sp.S(1) / 2), torch="torch.sigmoid({})")
tanh = activation("tanh", grad=lambda y, z: 1 - y**2, latex=r"\tanh",
                  definition=lambda z, exp: 2 / (1 + exp(-2 * z)) - 1, tanh_form=(1, 1, 0),
                  torch="torch.tanh({})")


class positive(sp.Function):  # noqa: N801 (a SymPy function, named as SymPy names them)
    """1 where the argument is > 0, else 0: derivatives of kinked activations use it, and take
    the derivative at a kink to be 0."""

    nargs = 1

    @classmethod
    def eval(cls, arg):
        if arg.is_Number:
            return sp.S.One if arg > 0 else sp.S.Zero

    def fdiff(self, argindex=1):
        return sp.S.Zero


relu = activation("relu", grad=lambda y, z: positive(y), latex=r"\operatorname{relu}",
                  definition=lambda z, exp: sp.Max(z, 0), numpy=lambda z: sp.Max(z, 0),
                  doc="max(z, 0); its derivative is taken to be 0 at z = 0", torch="torch.relu({})")
softsign = activation("softsign", grad=lambda y, z: (1 - sp.Abs(y)) ** 2,
                      latex=r"\operatorname{softsign}",
                      definition=lambda z, exp: z / (1 + sp.Abs(z)),
                      numpy=lambda z: z / (1 + sp.Abs(z)), doc="z/(1 + |z|)",
                      torch="F.softsign({})")
hard_sigmoid = activation("hard_sigmoid", grad=lambda y, z: positive(y) * positive(1 - y) / 6,
                          latex=r"\sigma_{\mathrm{hard}}", text="σ_hard",
                          definition=lambda z, exp: sp.Min(sp.Max(z / 6 + sp.S(1) / 2, 0), 1),
                          numpy=lambda z: sp.Min(sp.Max(z / 6 + sp.S(1) / 2, 0), 1),
                          doc="clip(z/6 + 1/2, 0, 1), as torch.nn.Hardsigmoid; its derivative is "
                              "1/6 for -3 < z < 3, else 0 (0 at the kinks)",
                          # written out: the float64 backward of F.hardsigmoid uses 1/6 rounded
                          # to float32 (3e-8 relative error)
                          torch="torch.clamp(({})/6 + 1/2, 0, 1)")
identity = activation("identity", grad=lambda y, z: sp.S.One, latex=r"\operatorname{id}",
                      definition=lambda z, exp: z, numpy=lambda z: z, doc="z itself",
                      torch="({})")


softplus = activation("softplus", grad=lambda y, z: sigmoid(z),
                      latex=r"\operatorname{softplus}",
                      definition=lambda z, exp: sp.log(1 + exp(z)),
                      numpy=lambda z: sp.Max(z, 0) + log1p(sp.exp(-sp.Abs(z))),
                      doc="log(1 + exp(z)) as max(z, 0) + log1p(exp(-|z|)): never overflows",
                      torch="(torch.clamp({0}, min=0) + torch.log1p(torch.exp(-torch.abs({0}))))")
silu = activation("silu", grad=lambda y, z: sigmoid(z) * (1 + z * (1 - sigmoid(z))),
                  latex=r"\operatorname{silu}",
                  definition=lambda z, exp: z / (1 + exp(-z)),
                  numpy=lambda z: z * sp.exp(sp.Min(z, 0)) / (1 + sp.exp(-sp.Abs(z))),
                  doc="z sigmoid(z), the sigmoid as exp(min(z, 0))/(1 + exp(-|z|)): never "
                      "overflows, accurate in float32 for z < 0 too", torch="F.silu({})")
elu = activation("elu", grad=lambda y, z: positive(y) + (1 - positive(y)) * (y + 1),
                 latex=r"\operatorname{elu}",
                 definition=lambda z, exp: sp.Piecewise((z, z > 0), (exp(z) - 1, True)),
                 numpy=lambda z: sp.Max(z, 0) + expm1(sp.Min(z, 0)),
                 doc="z for z > 0, else exp(z) - 1 (alpha 1, as torch.nn.ELU); its derivative is "
                     "taken to be 1 at z = 0",
                 torch="F.elu({})")


# SymPy's own elementwise functions a cell may call, by the name a TOML spec calls them: (the
# SymPy function, its number of arguments, its PyTorch code with the arguments as {0}, {1}).
# NumPy and LaTeX print them as SymPy does (np.exp, \exp); their derivatives are SymPy's.
#
# The derivative at a kink, the one convention (each as PyTorch takes it, tested):
# - relu, hard_sigmoid, elu: the derivative at the kink is that of the side z < 0 (``positive``);
# - abs(u): sign(u), 0 at u = 0;
# - max(u, v), min(u, v): at a tie u = v each argument gets half (SymPy's Heaviside(0) = 1/2).
FUNCTIONS = {
    "exp": (sp.exp, 1, "torch.exp({0})"),
    "log": (sp.log, 1, "torch.log({0})"),
    "log1p": (log1p, 1, "torch.log1p({0})"),
    "sqrt": (sp.sqrt, 1, "torch.sqrt({0})"),
    "abs": (sp.Abs, 1, "torch.abs({0})"),
    "sin": (sp.sin, 1, "torch.sin({0})"),
    "cos": (sp.cos, 1, "torch.cos({0})"),
    "max": (sp.Max, 2, "torch.maximum({0}, {1})"),
    "min": (sp.Min, 2, "torch.minimum({0}, {1})"),
}
# The SymPy function classes a cell may contain, with those their derivatives bring in.
ALLOWED = (sp.exp, sp.log, log1p, expm1, sp.Abs, sp.sin, sp.cos, sp.Max, sp.Min, sp.sign,
           sp.Heaviside)


def lookup(function):
    """The registry entry of a SymPy function class, or None if it is not an activation."""
    entry = REGISTRY.get(getattr(function, "__name__", None))
    return entry if entry is not None and entry.function is function else None


def is_activation(expr):
    return isinstance(expr, sp.Function) and lookup(expr.func) is not None
