"""Any cell as PyTorch code (needs torch): one step printed from the cell's forward equations,
looped in Python, autograd for the backward.

It is what a researcher with a new cell runs in PyTorch (no fused kernel exists for it): the
benchmark's peer for cells PyTorch has no module for, and, since its gradients come from
autograd and not from symrnn's derivation, an independent check of a generated module's backward.

The step is printed by a SymPy printer (``TorchPrinter``) from the Cell's nodes, in their order:
an affine map is one ``F.linear`` over the concatenation of what it reads, an elementwise node is
its expression with the activations as PyTorch's own functions. Every vector is a (B, its size)
tensor: a per-sample scalar (a mean, a time gap ``dt``) is (B, 1) and broadcasts over the units.
"""

import re

import numpy as np
import sympy as sp
import torch
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.pycode import PythonCodePrinter

from .activations import FUNCTIONS, is_activation, lookup
from .cell import Affine


class TorchPrinter(PythonCodePrinter):
    """Elementwise expressions over tensors: activations and SymPy's functions as PyTorch's own
    (their code is in the registry, ``activations``), a mean over the units as ``.mean(-1)``.

    ``modules``: the names the printed code calls ``torch`` and ``F`` (torch.nn.functional) by,
    where they are not those (``{"torch": "_torch"}`` for a cell with a value named torch)."""

    def __init__(self, settings=None, modules=None):
        super().__init__(settings)
        self.modules = dict(modules or {})

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            entry = lookup(expr.func)
            if entry.torch is None:
                raise ValueError(f"no PyTorch function for the activation {entry.name!r} (give "
                                 f"it one: activation(..., torch=...) in symrnn.activations)")
            return self._code(entry.torch).format(self._print(expr.args[0]))
        torch_code = TORCH.get(type(expr))
        if torch_code is not None and not isinstance(expr, (sp.Max, sp.Min)):
            return self._code(torch_code).format(*(self._print(a) for a in expr.args))
        return super()._print(expr, **kwargs)

    def _code(self, code):
        """Registry code with ``torch.`` and ``F.`` under the names the step has for them."""
        if not self.modules:
            return code
        return re.sub(r"(?<![\w.])(torch|F)\.", lambda m: f"{self.modules.get(m[1], m[1])}.",
                      code)

    def _print_mean(self, expr):
        return f"{self.parenthesize(expr.args[0], PRECEDENCE['Atom'])}.mean(-1, keepdim=True)"

    def _print_Pow(self, expr, rational=False):
        return self._hprint_Pow(expr, rational=rational, sqrt=self._code("torch.sqrt"))

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
            text = self._code(TORCH[type(expr)]).format(text, arg)
        clamp = self._code("torch.clamp")
        return f"{clamp}({text}, {bound}={self._print(numbers[0])})" if numbers else text


TORCH = {function: code for function, _, code in FUNCTIONS.values()}

# The names the printed step calls PyTorch, torch.nn.functional and its parameters by; each
# with a "_" before it where the cell has a value of that name (a cell's names never start with _)
GLOBALS = {"torch": torch, "F": torch.nn.functional}
PARAMS = "P"


def _names(cell):
    """``{"torch": ..., "F": ..., "P": ...}``: the step's names for them, free of the cell's."""
    taken = {*cell.inputs, *cell.states, *cell.params, *(n.out.name for n in cell.nodes)}
    taken |= {cell.prev(s).name for s in cell.states}
    return {m: f"_{m}" if m in taken else m for m in (*GLOBALS, PARAMS)}


def step_source(cell):
    """The source of ``step(x, *other inputs, *previous states, P) -> new states`` for the cell
    (``step(x, dt, a_prev, P)`` for gru_d): inputs and states (B, their size) tensors, P the
    parameters by name."""
    names = _names(cell)
    printer = TorchPrinter(modules={m: n for m, n in names.items() if m != n})
    torch_, F, P = names["torch"], names["F"], names[PARAMS]
    states = [f"{s}_prev" for s in cell.states]
    lines = [f"def step({', '.join([*cell.inputs, *states, P])}):"]
    lines += [f'    {v} = {P}["{v}"]' for v in cell.vectors]
    for node in cell.nodes:
        if isinstance(node, Affine):
            inputs = [printer.doprint(v) for v in node.inputs]
            joined = inputs[0] if len(inputs) == 1 else f"{torch_}.cat([{', '.join(inputs)}], 1)"
            bias = f'{P}["{node.bias.name}"]' if node.bias is not None else "None"
            lines.append(f'    {node.out.name} = {F}.linear({joined}, {P}["{node.weight.name}"], '
                         f'{bias})')
        else:
            lines.append(f"    {node.out.name} = {printer.doprint(node.expr)}")
    lines.append(f"    return {', '.join(cell.states)},")
    return "\n".join(lines) + "\n"


class CellLoop(torch.nn.Module):
    """The cell's printed step over a sequence.

    ``forward(x, state0=None, **inputs)`` -> (y: (T, B, size of the output state), the final
    states as a dict). x: (T, B, D); each other input of the cell by its name, a (T, B, its size)
    tensor (gru_d: ``dt=`` of shape (T, B, 1)); state0: a dict of (B, size) tensors, None for
    zeros. The sizes (D, H, P, ...) are read off ``params`` (``Cell.sizes_of``)."""

    def __init__(self, cell, params):
        super().__init__()
        self.P = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.from_numpy(np.array(v)))
                                         for k, v in params.items()})
        self.cell, self.states, self.inputs = cell, cell.states, cell.inputs[1:]
        self.sizes = cell.sizes_of(self.P)
        self.source = step_source(cell)
        namespace = {_names(cell)[m]: module for m, module in GLOBALS.items()}
        exec(compile(self.source, f"<torch step of {cell.name}>", "exec"), namespace)
        self.step = namespace["step"]

    def width(self, name):
        """How many numbers per sample the input or state ``name`` has."""
        size = self.cell.size(name)
        return 1 if size == 1 else self.sizes[size]

    def forward(self, x, state0=None, **inputs):
        cell = self.cell.name
        missing = [v for v in self.inputs if v not in inputs]
        unexpected = [v for v in inputs if v not in self.inputs]
        if missing or unexpected:
            problems = ([f"missing input {', '.join(map(repr, missing))}"] if missing else []) + (
                [f"unexpected input {', '.join(map(repr, unexpected))}"] if unexpected else [])
            takes = ", ".join(f"{v}=(T, B, {self.width(v)})" for v in self.inputs)
            raise ValueError(f"cell {cell!r}: {'; '.join(problems)} (it takes x"
                             + (f" and {takes}" if takes else " alone") + ")")
        if x.ndim != 3 or x.shape[2] != self.sizes["D"]:
            raise ValueError(f"cell {cell!r}: x: expected shape (T, B, {self.sizes['D']}), got "
                             f"{tuple(x.shape)}")
        T, B = x.shape[:2]
        for v in self.inputs:
            if tuple(inputs[v].shape) != (T, B, self.width(v)):
                raise ValueError(f"cell {cell!r}: {v}: expected shape {(T, B, self.width(v))}, "
                                 f"got {tuple(inputs[v].shape)}")
        states = tuple(state0[s] if state0 is not None else x.new_zeros(B, self.width(s))
                       for s in self.states)
        ys = []
        for t, x_t in enumerate(x):
            states = self.step(x_t, *(inputs[v][t] for v in self.inputs), *states, self.P)
            ys.append(states[0])
        return torch.stack(ys), dict(zip(self.states, states, strict=True))


__all__ = ["CellLoop", "TorchPrinter", "step_source"]
