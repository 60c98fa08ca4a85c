"""Any cell as PyTorch code (needs torch): one step printed from the cell's forward equations,
looped in Python, autograd for the backward.

It is what a researcher with a new cell runs in PyTorch (no fused kernel exists for it): the
benchmark's peer for cells PyTorch has no module for, and, since its gradients come from
autograd and not from symrnn's derivation, an independent check of a generated module's backward.

The step is printed by a SymPy printer (``TorchPrinter``) from the Cell's nodes, in their order:
an affine map is one ``F.linear`` over the concatenation of what it reads, an elementwise node is
its expression with the activations as PyTorch's own functions.
"""

import numpy as np
import sympy as sp
import torch
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from .activations import FUNCTIONS, is_activation, lookup
from .cell import Affine


class TorchPrinter(PythonCodePrinter):
    """Elementwise expressions over tensors: activations and SymPy's functions as PyTorch's own
    (their code is in the registry, ``activations``), a mean over the units as ``.mean(-1)``."""

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            entry = lookup(expr.func)
            if entry.torch is None:
                raise ValueError(f"no PyTorch function for the activation {entry.name!r} (give "
                                 f"it one: activation(..., torch=...) in symrnn.activations)")
            return entry.torch.format(self._print(expr.args[0]))
        torch_code = TORCH.get(type(expr))
        if torch_code is not None and not isinstance(expr, (sp.Max, sp.Min)):
            return torch_code.format(*(self._print(a) for a in expr.args))
        return super()._print(expr, **kwargs)

    def _print_mean(self, expr):
        return f"{self.parenthesize(expr.args[0], PRECEDENCE['Atom'])}.mean(-1, keepdim=True)"

    def _print_Pow(self, expr, rational=False):
        return self._hprint_Pow(expr, rational=rational, sqrt="torch.sqrt")

    def _print_Max(self, expr):
        return self._fold(expr, "min")

    def _print_Min(self, expr):
        return self._fold(expr, "max")

    def _fold(self, expr, bound):
        """max/min of tensors by their registry code (torch.maximum, ...), pair by pair; with a
        number, which torch.maximum does not take, by clamp (``bound``: its side)."""
        numbers = [a for a in expr.args if a.is_Number]
        rest = [self._print(a) for a in expr.args if not a.is_Number]
        text = rest[0]
        for arg in rest[1:]:
            text = TORCH[type(expr)].format(text, arg)
        return f"torch.clamp({text}, {bound}={self._print(numbers[0])})" if numbers else text


TORCH = {function: code for function, _, code in FUNCTIONS.values()}


def step_source(cell):
    """The source of ``step(x, *previous states, P) -> new states`` for the cell."""
    printer, states = TorchPrinter(), [f"{s}_prev" for s in cell.states]
    lines = [f"def step(x, {', '.join(states)}, P):"]
    lines += [f'    {v} = P["{v}"]' for v in cell.vectors]
    for node in cell.nodes:
        if isinstance(node, Affine):
            inputs = [printer.doprint(v) for v in node.inputs]
            joined = inputs[0] if len(inputs) == 1 else f"torch.cat([{', '.join(inputs)}], 1)"
            bias = f'P["{node.bias.name}"]' if node.bias is not None else "None"
            lines.append(f'    {node.out.name} = F.linear({joined}, P["{node.weight.name}"], '
                         f'{bias})')
        else:
            lines.append(f"    {node.out.name} = {printer.doprint(node.expr)}")
    lines.append(f"    return {', '.join(cell.states)},")
    return "\n".join(lines) + "\n"


class CellLoop(torch.nn.Module):
    """The cell's printed step over a sequence. ``forward(x, state0=None)`` -> (y (T, B, H), the
    final states as a dict); state0: a dict of (B, H) tensors, None for zeros."""

    def __init__(self, cell, params):
        super().__init__()
        self.P = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.from_numpy(np.array(v)))
                                         for k, v in params.items()})
        self.source, self.states = step_source(cell), cell.states
        namespace = {"torch": torch, "F": torch.nn.functional}
        exec(compile(self.source, f"<torch step of {cell.name}>", "exec"), namespace)
        self.step = namespace["step"]

    def forward(self, x, state0=None):
        H = next(v.shape[0] for v in self.P.values() if v.ndim == 2)
        states = tuple(state0[s] if state0 is not None else x.new_zeros(x.shape[1], H)
                       for s in self.states)
        ys = []
        for x_t in x:
            states = self.step(x_t, *states, self.P)
            ys.append(states[0])
        return torch.stack(ys), dict(zip(self.states, states, strict=True))


__all__ = ["CellLoop", "TorchPrinter", "step_source"]
