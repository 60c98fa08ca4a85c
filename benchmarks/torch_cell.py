"""Any symrnn cell as PyTorch code: one step printed from the cell's forward equations, looped in
Python, autograd for the backward. It is what a researcher with a new cell runs in PyTorch (no
fused kernel exists for it), and the benchmark's peer for cells PyTorch has no module for.

The step is printed by a SymPy printer (``TorchPrinter``) from the Cell's nodes, in their order:
an affine map is one ``F.linear`` over the concatenation of what it reads, an elementwise node is
its expression with the activations as PyTorch's own functions.
"""

import numpy as np
import torch
from sympy.printing.pycode import PythonCodePrinter

from symrnn.activations import is_activation
from symrnn.cell import Affine

TORCH = {"sigmoid": "torch.sigmoid", "tanh": "torch.tanh", "relu": "torch.relu",
         "softsign": "F.softsign", "hard_sigmoid": "F.hardsigmoid", "identity": ""}


class TorchPrinter(PythonCodePrinter):
    """Elementwise expressions over tensors: activations as PyTorch functions."""

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            name = expr.func.__name__
            if name not in TORCH:
                raise ValueError(f"no PyTorch function for the activation {name!r}")
            return f"{TORCH[name]}({self._print(expr.args[0])})"
        return super()._print(expr, **kwargs)

    def _print_Max(self, expr):
        raise ValueError("Max in a forward equation: no PyTorch form printed for it")

    _print_Min = _print_Max


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
    """The cell's printed step over the sequence; returns y (T, B, H), the first state."""

    def __init__(self, cell, params):
        super().__init__()
        self.P = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.from_numpy(np.array(v)))
                                         for k, v in params.items()})
        self.source = step_source(cell)
        namespace = {"torch": torch, "F": torch.nn.functional}
        exec(compile(self.source, f"<torch step of {cell.name}>", "exec"), namespace)
        self.step, self.count = namespace["step"], len(cell.states)

    def forward(self, x):
        H = next(v.shape[0] for k, v in self.P.items() if v.ndim == 2)
        states, ys = (x.new_zeros(x.shape[1], H),) * self.count, []
        for x_t in x:
            states = self.step(x_t, *states, self.P)
            ys.append(states[0])
        return torch.stack(ys)


__all__ = ["CellLoop", "TorchPrinter", "step_source"]
