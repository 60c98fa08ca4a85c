"""Weights to and from PyTorch: ``torch.nn.LSTM`` is symrnn's ``lstm``, ``torch.nn.GRU`` its
``gru_torch``. PyTorch is imported only when a function here is called
(``pip install 'symrnn[peers]'``).

    cell, params = from_torch(torch.nn.LSTM(D, H))    # ("lstm", {"W_f": (H, H + D), ...})
    mod = symrnn.load(cell)
    y, state_T, cache = mod.forward(params, x)        # = the torch module's output, to rounding
    module = to_torch(cell, params)                   # and back

Only a single layer, unidirectional, batch_first=False, bias=True and (LSTM) proj_size=0 module
maps to a cell; any other configuration raises ``ValueError``.

torch stacks its gates in the rows of ``weight_ih_l0`` (G*H, D) and ``weight_hh_l0`` (G*H, H), in
the order of ``GATES`` below, and gives each gate two biases, ``bias_ih_l0`` and ``bias_hh_l0``.
A symrnn weight reading ``[a_prev; x]`` is ``[weight_hh rows | weight_ih rows]`` (state columns
first), and its bias is ``bias_ih + bias_hh``. The GRU's candidate ``n`` keeps them apart, as
``gru_torch`` does: ``W_in, b_in`` from the ih side and ``W_hn, b_hn`` from the hh side (the reset
gate multiplies only the latter).

The split of a summed bias is not unique: ``to_torch`` puts all of ``b_k`` in ``bias_ih`` and
zeros in ``bias_hh``. The module computes the same function, but its biases are not the ones a
module passed to ``from_torch`` had, and training it in torch moves both halves.
"""

import numpy as np

# symrnn cell: (torch class, rows). Each row: torch gate, its block of H rows in torch's stacked
# weights, which torch weights the symrnn weight is made of ("hh+ih": [weight_hh | weight_ih] with
# bias_ih + bias_hh; "ih" or "hh": that side alone, with its own bias), the symrnn weight, bias.
GATES = {
    "lstm": ("LSTM", (
        ("i", 0, "hh+ih", "W_u", "b_u"),
        ("f", 1, "hh+ih", "W_f", "b_f"),
        ("g", 2, "hh+ih", "W_c", "b_c"),
        ("o", 3, "hh+ih", "W_o", "b_o"),
    )),
    "gru_torch": ("GRU", (
        ("r", 0, "hh+ih", "W_r", "b_r"),
        ("z", 1, "hh+ih", "W_u", "b_u"),
        ("n", 2, "ih", "W_in", "b_in"),
        ("n", 2, "hh", "W_hn", "b_hn"),
    )),
}
_DTYPES = ("float32", "float64")


def _torch():
    try:
        import torch
    except ImportError as e:
        raise ImportError("symrnn.interop needs PyTorch: pip install 'symrnn[peers]'") from e
    return torch


def _cell_of(module):
    """The symrnn cell a torch module maps to, or ValueError saying why none does."""
    torch = _torch()
    kinds = {getattr(torch.nn, kind): cell for cell, (kind, _) in GATES.items()}
    cell = kinds.get(type(module))
    if cell is None:
        raise ValueError(f"{type(module).__name__} has no symrnn cell: "
                         f"only torch.nn.LSTM (-> 'lstm') and torch.nn.GRU (-> 'gru_torch')")
    unsupported = [what for what, bad in (
        (f"num_layers={module.num_layers} (only 1)", module.num_layers != 1),
        ("bidirectional=True", module.bidirectional),
        ("batch_first=True (symrnn is time-major: x.transpose(0, 1))", module.batch_first),
        ("bias=False", not module.bias),
        (f"proj_size={getattr(module, 'proj_size', 0)}", getattr(module, "proj_size", 0)),
    ) if bad]
    if unsupported:
        raise ValueError(f"unsupported torch.nn.{type(module).__name__} configuration: "
                         + ", ".join(unsupported))
    return cell


def from_torch(module):
    """``(cell_name, params)`` for a ``torch.nn.LSTM`` (``"lstm"``) or ``torch.nn.GRU``
    (``"gru_torch"``): NumPy copies in symrnn's layout, in the cell's PARAMS order, of the
    weights' dtype (float32 or float64)."""
    from .api import get_cell

    cell = _cell_of(module)
    t = {name: getattr(module, f"{name}_l0").detach().cpu() for name in
         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
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
    return cell, {name: out[name] for name in get_cell(cell).params}


def to_torch(cell_name, params, module=None):
    """A ``torch.nn.LSTM`` / ``torch.nn.GRU`` computing what ``cell_name`` computes with
    ``params``: a new one (of the params' dtype, on the CPU), or ``module`` with its parameters
    overwritten in place (in its own dtype and device). A summed bias goes to ``bias_ih`` whole,
    ``bias_hh`` gets zeros (the split is not unique)."""
    torch = _torch()
    if cell_name not in GATES:
        raise ValueError(f"cell {cell_name!r} has no torch module: only {', '.join(GATES)}")
    kind, rows = GATES[cell_name]
    expected = {name for row in rows for name in row[3:]}
    if set(params) != expected:
        raise ValueError(f"params for {cell_name!r} must be {sorted(expected)}, "
                         f"not {sorted(params)}")
    params = {name: np.asarray(value) for name, value in params.items()}
    W0 = params[rows[0][3]]  # an "hh+ih" weight: (H, H + D)
    H, D = W0.shape[0], W0.shape[1] - W0.shape[0]
    if D < 1:
        raise ValueError(f"params[{rows[0][3]!r}] has shape {W0.shape}; expected (H, H + D), D > 0")
    shapes = {"hh+ih": (H, H + D), "ih": (H, D), "hh": (H, H)}
    for _, _, reads, W, b in rows:
        for name, shape in ((W, shapes[reads]), (b, (H,))):
            if params[name].shape != shape:
                raise ValueError(f"params[{name!r}] has shape {params[name].shape}; expected "
                                 f"{shape} from {rows[0][3]} {W0.shape} (H={H}, D={D})")
    if module is None:
        dtype = np.result_type(*params.values())
        if dtype.name not in _DTYPES:
            raise ValueError(f"{dtype} params: symrnn takes float32 or float64")
        module = getattr(torch.nn, kind)(D, H, dtype=getattr(torch, dtype.name))
    elif _cell_of(module) != cell_name:
        raise ValueError(f"a torch.nn.{type(module).__name__} cannot hold {cell_name!r} params")
    elif (module.input_size, module.hidden_size) != (D, H):
        raise ValueError(f"the module has input_size={module.input_size}, hidden_size="
                         f"{module.hidden_size}; the params have D={D}, H={H}")
    t = {name: getattr(module, f"{name}_l0") for name in
         ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    with torch.no_grad():
        for _, block, reads, W, b in rows:
            r = slice(block * H, (block + 1) * H)
            if reads == "hh+ih":
                weights = {"hh": params[W][:, :H], "ih": params[W][:, H:]}
                biases = {"ih": params[b], "hh": np.zeros_like(params[b])}
            else:
                weights, biases = {reads: params[W]}, {reads: params[b]}
            for side in weights:
                t[f"weight_{side}"][r].copy_(torch.from_numpy(np.ascontiguousarray(weights[side])))
                t[f"bias_{side}"][r].copy_(torch.from_numpy(np.ascontiguousarray(biases[side])))
    return module
