"""Weights to and from PyTorch: ``torch.nn.LSTM`` is symrnn's ``lstm``, ``torch.nn.LSTM`` with
``proj_size=P`` its ``lstmp``, ``torch.nn.GRU`` its ``gru_torch``. PyTorch is imported only when a
function here is called (``pip install 'symrnn[peers]'``).

    cell, params = from_torch(torch.nn.LSTM(D, H))    # ("lstm", {"W_f": (H, H + D), ...})
    mod = symrnn.load(cell)
    y, state_T, cache = mod.forward(params, x)        # = the torch module's output, to rounding
    module = to_torch(cell, params)                   # and back

    cell, params = from_torch(torch.nn.LSTM(D, H, proj_size=P))
    # ("lstmp", {"W_f": (H, P + D), ..., "W_p": (P, H)}); torch's h is the state "a" (size P),
    # its c the state "c" (size H); mod.init_params(D, H, P=P) draws such params

Only a single layer, unidirectional, batch_first=False, bias=True module maps to a cell; any
other configuration raises ``ValueError``. ``to_torch`` reads the sizes off the params' shapes
(``Cell.sizes_of``), and an ``lstmp`` needs 0 < P < H, as torch does.

torch stacks its gates in the rows of ``weight_ih_l0`` (G*H, D) and ``weight_hh_l0`` (G*H, S), S
the size of its recurrent state (H, or P with a projection), in the order of ``GATES`` below, and
gives each gate two biases, ``bias_ih_l0`` and ``bias_hh_l0``. A symrnn weight reading
``[a_prev; x]`` is ``[weight_hh rows | weight_ih rows]`` (state columns first), and its bias is
``bias_ih + bias_hh``. The GRU's candidate ``n`` keeps them apart, as ``gru_torch`` does:
``W_in, b_in`` from the ih side and ``W_hn, b_hn`` from the hh side (the reset gate multiplies
only the latter). A weight torch holds as symrnn does (``AS_IS``: the projection ``W_p`` is
``weight_hr_l0``, (P, H), no bias) is copied as it is.

The split of a summed bias is not unique: ``to_torch`` puts all of ``b_k`` in ``bias_ih`` and
zeros in ``bias_hh``. The module computes the same function, but its biases are not the ones a
module passed to ``from_torch`` had, and training it in torch moves both halves.
"""

import numpy as np
import sympy as sp

# symrnn cell: (torch class, rows). Each row: torch gate, its block of H rows in torch's stacked
# weights, which torch weights the symrnn weight is made of ("hh+ih": [weight_hh | weight_ih] with
# bias_ih + bias_hh; "ih" or "hh": that side alone, with its own bias), the symrnn weight, bias.
_LSTM_ROWS = (
    ("i", 0, "hh+ih", "W_u", "b_u"),
    ("f", 1, "hh+ih", "W_f", "b_f"),
    ("g", 2, "hh+ih", "W_c", "b_c"),
    ("o", 3, "hh+ih", "W_o", "b_o"),
)
GATES = {
    "lstm": ("LSTM", _LSTM_ROWS),
    "lstmp": ("LSTM", _LSTM_ROWS),
    "gru_torch": ("GRU", (
        ("r", 0, "hh+ih", "W_r", "b_r"),
        ("z", 1, "hh+ih", "W_u", "b_u"),
        ("n", 2, "ih", "W_in", "b_in"),
        ("n", 2, "hh", "W_hn", "b_hn"),
    )),
}
# symrnn weight -> the torch weight (without "_l0") it is, unchanged: no gate blocks, no bias.
AS_IS = {"lstmp": {"W_p": "weight_hr"}}
# a size of the cell beyond D and H -> the torch constructor's keyword that sets it
SIZES = {"lstmp": {"P": "proj_size"}}
_DTYPES = ("float32", "float64")


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("symrnn.interop needs PyTorch: pip install 'symrnn[peers]'") from e
    return torch


def _shape(shape):
    """A symbolic shape as a tuple prints: ``(H, P + D)``, ``(H,)``."""
    return f"({', '.join(map(str, shape))}{',' * (len(shape) == 1)})"


def _cell_of(module):
    """The symrnn cell a torch module maps to, or ValueError saying why none does."""
    torch = _torch()
    cell = {torch.nn.LSTM: "lstm", torch.nn.GRU: "gru_torch"}.get(type(module))
    if cell is None:
        raise ValueError(f"{type(module).__name__} has no symrnn cell: only torch.nn.LSTM "
                         f"(-> 'lstm', with proj_size > 0 -> 'lstmp') and torch.nn.GRU "
                         f"(-> 'gru_torch')")
    unsupported = [what for what, bad in (
        (f"num_layers={module.num_layers} (only 1)", module.num_layers != 1),
        ("bidirectional=True", module.bidirectional),
        ("batch_first=True (symrnn is time-major: x.transpose(0, 1))", module.batch_first),
        ("bias=False", not module.bias),
    ) if bad]
    if unsupported:
        raise ValueError(f"unsupported torch.nn.{type(module).__name__} configuration: "
                         + ", ".join(unsupported))
    return "lstmp" if cell == "lstm" and module.proj_size else cell


def from_torch(module):
    """``(cell_name, params)`` for a ``torch.nn.LSTM`` (``"lstm"``; ``"lstmp"`` if its
    ``proj_size`` > 0) or ``torch.nn.GRU`` (``"gru_torch"``): NumPy copies in symrnn's layout, in
    the cell's PARAMS order, of the weights' dtype (float32 or float64)."""
    from .api import get_cell

    cell = _cell_of(module)
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", *AS_IS.get(cell, {}).values())
    t = {name: getattr(module, f"{name}_l0").detach().cpu() for name in names}
    dtype = str(t["weight_ih"].dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        raise ValueError(f"{dtype} weights: symrnn takes float32 or float64 "
                         f"(convert with module.float() or module.double())")
    t = {name: value.numpy() for name, value in t.items()}
    H, out = module.hidden_size, {}
    for _, block, reads, W, b in GATES[cell][1]:
        rows = slice(block * H, (block + 1) * H)
        sides = reads.split("+")
        out[W] = np.concatenate([t[f"weight_{s}"][rows] for s in sides], axis=1)
        out[b] = sum(t[f"bias_{s}"][rows] for s in sides)
    for W, name in AS_IS.get(cell, {}).items():
        out[W] = t[name].copy()  # .numpy() shares the tensor's memory
    return cell, {name: out[name] for name in get_cell(cell).params}


def to_torch(cell_name, params, module=None):
    """A ``torch.nn.LSTM`` (with ``proj_size=P`` for ``"lstmp"``) / ``torch.nn.GRU`` computing
    what ``cell_name`` computes with ``params``: a new one (of the params' dtype, on the CPU), or
    ``module`` with its parameters overwritten in place (in its own dtype and device). The sizes
    are read off the params' shapes. A summed bias goes to ``bias_ih`` whole, ``bias_hh`` gets
    zeros (the split is not unique)."""
    from .api import get_cell

    torch = _torch()
    if cell_name not in GATES:
        raise ValueError(f"cell {cell_name!r} has no torch module: only {', '.join(GATES)}")
    kind, rows = GATES[cell_name]
    cell = get_cell(cell_name)
    if set(params) != set(cell.params):
        raise ValueError(f"params for {cell_name!r} must be {sorted(cell.params)}, "
                         f"not {sorted(params)}")
    params = {name: np.asarray(value) for name, value in params.items()}
    symbols = {n: sp.Symbol(n) for n in cell.size_names}
    for name in cell.params:  # before sizes_of, which cannot read a size off a wrong rank
        shape = cell.param_shape(name, **symbols)
        if params[name].ndim != len(shape):
            raise ValueError(f"params[{name!r}]: expected shape {_shape(shape)}, got "
                             f"{params[name].shape}")
    sizes = cell.sizes_of(params)  # ValueError naming a parameter of the wrong shape
    keywords = {torch_name: sizes[n] for n, torch_name in SIZES.get(cell_name, {}).items()}
    D, H = sizes["D"], sizes["H"]
    if D < 1:
        W = rows[0][3]
        raise ValueError(f"params[{W!r}]: expected shape "
                         f"{_shape(cell.param_shape(W, **symbols))} with D > 0, got "
                         f"{params[W].shape}")
    if "proj_size" in keywords and not 0 < keywords["proj_size"] < H:
        raise ValueError(f"params['W_p']: shape {params['W_p'].shape} gives P={sizes['P']}, "
                         f"H={H}; torch.nn.LSTM needs 0 < proj_size < hidden_size")
    if module is None:
        dtype = np.result_type(*params.values())
        if dtype.name not in _DTYPES:
            raise ValueError(f"{dtype} params: symrnn takes float32 or float64")
        module = getattr(torch.nn, kind)(D, H, dtype=getattr(torch, dtype.name), **keywords)
    elif (held := _cell_of(module)) != cell_name:
        raise ValueError(f"a torch.nn.{type(module).__name__} holds {held!r} params; it cannot "
                         f"hold {cell_name!r} params")
    elif ((module.input_size, module.hidden_size, *(getattr(module, k) for k in keywords))
          != (D, H, *keywords.values())):
        have = {"input_size": module.input_size, "hidden_size": module.hidden_size,
                **{k: getattr(module, k) for k in keywords}}
        raise ValueError(f"the module has {', '.join(f'{k}={v}' for k, v in have.items())}; "
                         f"the params have {', '.join(f'{n}={sizes[n]}' for n in cell.size_names)}")
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", *AS_IS.get(cell_name, {}).values())
    t = {name: getattr(module, f"{name}_l0") for name in names}
    with torch.no_grad():
        for _, block, reads, W, b in rows:
            r = slice(block * H, (block + 1) * H)
            if reads == "hh+ih":
                S = params[W].shape[1] - D  # the state's columns come first
                weights = {"hh": params[W][:, :S], "ih": params[W][:, S:]}
                biases = {"ih": params[b], "hh": np.zeros_like(params[b])}
            else:
                weights, biases = {reads: params[W]}, {reads: params[b]}
            for side in weights:
                t[f"weight_{side}"][r].copy_(torch.from_numpy(np.ascontiguousarray(weights[side])))
                t[f"bias_{side}"][r].copy_(torch.from_numpy(np.ascontiguousarray(biases[side])))
        for W, name in AS_IS.get(cell_name, {}).items():
            t[name].copy_(torch.from_numpy(np.ascontiguousarray(params[W])))
    return module
