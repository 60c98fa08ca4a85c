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
import torch
from sympy.printing.pycode import PythonCodePrinter

from .activations import is_activation, lookup
from .cell import Affine


class TorchPrinter(PythonCodePrinter):
    """Elementwise expressions over tensors: activations as PyTorch functions."""

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            entry = lookup(expr.func)
            if entry.torch is None:
                raise ValueError(f"no PyTorch function for the activation {entry.name!r} (give "
                                 f"it one: activation(..., torch=...) in symrnn.activations)")
            return entry.torch.format(self._print(expr.args[0]))
        return super()._print(expr, **kwargs)


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
