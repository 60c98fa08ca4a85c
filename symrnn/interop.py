"""Weights, states and batches to and from PyTorch: ``torch.nn.LSTM`` is symrnn's ``lstm``,
``torch.nn.LSTM`` with ``proj_size=P`` its ``lstmp``, ``torch.nn.GRU`` its ``gru_torch``; a
module with several layers, both directions or batch_first is a symrnn ``Network`` of that cell
(``symrnn.api.network``). PyTorch is imported only when a function here is called
(``pip install 'symrnn[peers]'``).

One layer, one direction, time-major (any ``bias``):

    cell, params = from_torch(torch.nn.LSTM(D, H))    # ("lstm", {"W_f": (H, H + D), ...})
    mod = symrnn.load(cell)
    y, state_T, cache = mod.forward(params, x)        # = the torch module's output, to rounding
    module = to_torch(cell, params)                   # and back

    cell, params = from_torch(torch.nn.LSTM(D, H, proj_size=P))
    # ("lstmp", {"W_f": (H, P + D), ..., "W_p": (P, H)}); torch's h is the state "a" (size P),
    # its c the state "c" (size H); mod.init_params(D, H, P=P) draws such params

Any torch.nn.LSTM / GRU (num_layers, bidirectional, batch_first, bias, proj_size), and a packed
batch:

    lstm = torch.nn.LSTM(D, H, num_layers=2, bidirectional=True, batch_first=True)
    net, params = network_from_torch(lstm)            # backend="numba" for compiled loops
    # params: {"l0.W_f": ..., "l0_reverse.W_f": ..., "l1.W_f": (H, H + 2 * H), ...}
    x, lengths = from_packed(packed, batch_first=True)  # padded (B, T, D), lengths (B,)
    y, state_T, cache = net.forward(params, x, state_from_torch(net, (h0, c0)), lengths=lengths)
    output = to_packed(y, lengths, batch_first=True)  # = lstm(packed, (h0, c0))[0]
    h_n, c_n = state_to_torch(net, state_T)           # = its final states
    lstm = to_torch(net, params)                      # and back

Layer k's forward direction is the Network's prefix "l{k}" and torch's suffix "_l{k}", its
reverse direction "l{k}_reverse" and "_l{k}_reverse". Layer k > 0 reads the [forward, reverse]
outputs of the layer below (2 * H, or 2 * P with a projection). torch's states (h, c) are the
cell's STATES in order ("a", "c"; a GRU's h alone is "a"), each (num_layers * dirs, B, size),
row k * dirs + d for layer k, direction d; the Network's are flat: "l{k}[_reverse].a".

Refused, each with one line saying why (``ValueError``): another class; a float16 (or other
non-float32/64) module; ``dropout`` > 0 between layers (a Network has no dropout: it computes the
module in eval mode; set ``module.dropout = 0`` to map the weights); ``from_torch`` of a module
that is a network (it names ``network_from_torch``). ``to_torch`` reads the sizes off the
params' shapes (``Cell.sizes_of``), or off the Network, and an ``lstmp`` needs 0 < P < H, as
torch does.

torch stacks its gates in the rows of ``weight_ih_l0`` (G*H, D) and ``weight_hh_l0`` (G*H, S), S
the size of its recurrent state (H, or P with a projection), in the order of ``GATES`` below, and
gives each gate two biases, ``bias_ih_l0`` and ``bias_hh_l0``. A symrnn weight reading
``[a_prev; x]`` is ``[weight_hh rows | weight_ih rows]`` (state columns first), and its bias is
``bias_ih + bias_hh`` (zeros for a module with ``bias=False``). The GRU's candidate ``n`` keeps
them apart, as ``gru_torch`` does: ``W_in, b_in`` from the ih side and ``W_hn, b_hn`` from the hh
side (the reset gate multiplies only the latter). A weight torch holds as symrnn does
(``AS_IS``: the projection ``W_p`` is ``weight_hr_l0``, (P, H), no bias) is copied as it is.

The split of a summed bias is not unique: ``to_torch`` makes a module with ``bias=True`` and puts
all of ``b_k`` in ``bias_ih``, zeros in ``bias_hh``. The module computes the same function, but
its biases are not the ones a module passed to ``from_torch`` had, and training it in torch moves
both halves. (Into a given ``module=`` with ``bias=False``, only all-zero biases go.)
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
# what else a torch module is built with, as a Network attribute of the same name has it
NETWORK = ("num_layers", "bidirectional", "batch_first")
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


def _prefixes(num_layers, bidirectional):
    """The Network's flat-name prefix of every layer and direction, in order: "l0",
    "l0_reverse", "l1", ...; torch's parameter suffix is "_" and the prefix."""
    return [f"l{k}{suffix}" for k in range(num_layers)
            for suffix in (("", "_reverse") if bidirectional else ("",))]


def _cell_of(module, network=False):
    """The symrnn cell a torch module maps to, or ValueError saying why none does: a module
    that is a network (layers, directions, batch_first) only where ``network``."""
    torch = _torch()
    cell = {torch.nn.LSTM: "lstm", torch.nn.GRU: "gru_torch"}.get(type(module))
    if cell is None:
        raise ValueError(f"{type(module).__name__} has no symrnn cell: only torch.nn.LSTM "
                         f"(-> 'lstm', with proj_size > 0 -> 'lstmp') and torch.nn.GRU "
                         f"(-> 'gru_torch')")
    kind = type(module).__name__
    if not network:
        config = [f"{what}={getattr(module, what)}" for what in NETWORK
                  if getattr(module, what) != (what == "num_layers")]
        if config:
            raise ValueError(f"a torch.nn.{kind} with {', '.join(config)} is a network, not "
                             f"one cell: use symrnn.interop.network_from_torch(module)")
    if module.dropout and module.num_layers > 1:
        raise ValueError(f"torch.nn.{kind} with dropout={module.dropout}: a symrnn Network has "
                         f"no dropout between layers (it computes the module in eval mode); set "
                         f"module.dropout = 0 to map its weights")
    return "lstmp" if cell == "lstm" and module.proj_size else cell


def _names(cell_name):
    """The torch weights of one layer and direction (without the "_l0" suffix)."""
    return ("weight_ih", "weight_hh", "bias_ih", "bias_hh", *AS_IS.get(cell_name, {}).values())


def _read(module, cell_name, suffix):
    """One layer and direction of a torch module (``suffix`` "_l0", "_l1_reverse", ...) as the
    cell's params: NumPy copies, in the cell's PARAMS order, of the weights' dtype; zero biases
    for a module with bias=False."""
    from .api import get_cell

    weight = getattr(module, f"weight_ih{suffix}")
    dtype = str(weight.dtype).removeprefix("torch.")
    if dtype not in _DTYPES:
        raise ValueError(f"{dtype} weights: symrnn takes float32 or float64 "
                         f"(convert with module.float() or module.double())")
    t = {}
    for name in _names(cell_name):
        if name.startswith("bias") and not module.bias:
            t[name] = np.zeros(weight.shape[0], dtype=dtype)
        else:
            t[name] = getattr(module, f"{name}{suffix}").detach().cpu().numpy()
    H, out = module.hidden_size, {}
    for _, block, reads, W, b in GATES[cell_name][1]:
        rows = slice(block * H, (block + 1) * H)
        sides = reads.split("+")
        out[W] = np.concatenate([t[f"weight_{s}"][rows] for s in sides], axis=1)
        out[b] = sum(t[f"bias_{s}"][rows] for s in sides)  # a new array, even for one side
    for W, name in AS_IS.get(cell_name, {}).items():
        out[W] = t[name].copy()  # .numpy() shares the tensor's memory
    return {name: out[name] for name in get_cell(cell_name).params}


def _write(module, cell_name, params, suffix, D):
    """Overwrite one layer and direction of a torch module (in its own dtype and device) with a
    cell's params (checked shapes), that layer reading D inputs. A summed bias goes to bias_ih
    whole, bias_hh gets zeros; a module with bias=False takes only zero biases."""
    torch = _torch()
    H = module.hidden_size
    if not module.bias:
        nonzero = [b for _, _, _, _, b in GATES[cell_name][1] if np.any(params[b])]
        if nonzero:
            raise ValueError(f"the module has bias=False; it cannot hold the non-zero biases "
                             f"{', '.join(nonzero)} (of {suffix[1:]})")
    t = {name: getattr(module, f"{name}{suffix}", None) for name in _names(cell_name)}
    with torch.no_grad():
        for _, block, reads, W, b in GATES[cell_name][1]:
            r = slice(block * H, (block + 1) * H)
            if reads == "hh+ih":
                S = params[W].shape[1] - D  # the state's columns come first
                weights = {"hh": params[W][:, :S], "ih": params[W][:, S:]}
                biases = {"ih": params[b], "hh": np.zeros_like(params[b])}
            else:
                weights, biases = {reads: params[W]}, {reads: params[b]}
            for side in weights:
                t[f"weight_{side}"][r].copy_(_tensor(weights[side]))
                if module.bias:
                    t[f"bias_{side}"][r].copy_(_tensor(biases[side]))
        for W, name in AS_IS.get(cell_name, {}).items():
            t[name].copy_(_tensor(params[W]))
    return module


def _tensor(array):
    return _torch().from_numpy(np.ascontiguousarray(array))


def _new_module(kind, D, H, dtype, keywords):
    """A new torch module (CPU) of class ``kind`` of the params' dtype, or ValueError."""
    torch = _torch()
    if dtype.name not in _DTYPES:
        raise ValueError(f"{dtype} params: symrnn takes float32 or float64")
    return getattr(torch.nn, kind)(D, H, dtype=getattr(torch, dtype.name), **keywords)


def _check_module(module, cell_name, want):
    """ValueError unless ``module`` holds ``cell_name`` params with the settings ``want``."""
    if (held := _cell_of(module, network=True)) != cell_name:
        raise ValueError(f"a torch.nn.{type(module).__name__} holds {held!r} params; it cannot "
                         f"hold {cell_name!r} params")
    have = {k: getattr(module, k) for k in want}
    differ = [k for k in want if have[k] != want[k]]
    if differ:
        raise ValueError(f"the module has {', '.join(f'{k}={have[k]}' for k in differ)}; the "
                         f"params need {', '.join(f'{k}={want[k]}' for k in differ)}")


def from_torch(module):
    """``(cell_name, params)`` for a single-layer, unidirectional, time-major ``torch.nn.LSTM``
    (``"lstm"``; ``"lstmp"`` if its ``proj_size`` > 0) or ``torch.nn.GRU`` (``"gru_torch"``):
    NumPy copies in symrnn's layout, in the cell's PARAMS order, of the weights' dtype (float32
    or float64); zero biases for ``bias=False``. Any other module is a network:
    ``network_from_torch``."""
    cell = _cell_of(module)
    return cell, _read(module, cell, "_l0")


def network_from_torch(module, backend="numpy"):
    """``(net, params)`` for any ``torch.nn.LSTM`` / ``torch.nn.GRU``: a ``Network``
    (``symrnn.api.network``, over the cell's ``backend`` module) with the module's layers,
    directions, batch_first and sizes, and its flat params ("l0.W_f", "l0_reverse.W_f", ...),
    NumPy copies in the Network's PARAMS order, of the weights' dtype."""
    from . import api

    cell = _cell_of(module, network=True)
    sizes = {name: getattr(module, keyword) for name, keyword in SIZES.get(cell, {}).items()}
    net = api.network(cell, module.input_size, module.hidden_size, backend=backend,
                      **{k: getattr(module, k) for k in NETWORK}, **sizes)
    params = {f"{prefix}.{name}": value
              for prefix in _prefixes(module.num_layers, module.bidirectional)
              for name, value in _read(module, cell, f"_{prefix}").items()}
    return net, {name: params[name] for name in net.PARAMS}


def _is_network(obj):
    """A Network (of symrnn.api.load_network() or of a generated network.py), by its attributes."""
    return all(hasattr(obj, a) for a in ("cell", "PARAMS", "STATES", "param_shapes", *NETWORK))


def to_torch(cell_or_net, params, module=None):
    """A ``torch.nn.LSTM`` (with ``proj_size=P`` for ``"lstmp"``) / ``torch.nn.GRU`` computing
    what a cell (its name) or a ``Network`` computes with ``params``: a new one (bias=True, of
    the params' dtype, on the CPU), or ``module`` with its parameters overwritten in place (in
    its own dtype and device). A cell's sizes are read off the params' shapes; a Network's are
    its own (num_layers, bidirectional, batch_first too), the params checked against them. A
    summed bias goes to ``bias_ih`` whole, ``bias_hh`` gets zeros (the split is not unique)."""
    if _is_network(cell_or_net):
        return _network_to_torch(cell_or_net, params, module)
    from .api import get_cell

    cell_name = cell_or_net
    if cell_name not in GATES:
        raise ValueError(f"cell {cell_name!r} has no torch module: only {', '.join(GATES)}")
    kind = GATES[cell_name][0]
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
        W = GATES[cell_name][1][0][3]
        raise ValueError(f"params[{W!r}]: expected shape "
                         f"{_shape(cell.param_shape(W, **symbols))} with D > 0, got "
                         f"{params[W].shape}")
    if "proj_size" in keywords and not 0 < keywords["proj_size"] < H:
        raise ValueError(f"params['W_p']: shape {params['W_p'].shape} gives P={sizes['P']}, "
                         f"H={H}; torch.nn.LSTM needs 0 < proj_size < hidden_size")
    if module is None:
        module = _new_module(kind, D, H, np.result_type(*params.values()), keywords)
    else:
        _check_module(module, cell_name, {"input_size": D, "hidden_size": H, **keywords,
                                          "num_layers": 1, "bidirectional": False,
                                          "batch_first": False})
    return _write(module, cell_name, params, "_l0", D)


def _network_to_torch(net, params, module):
    cell_name = net.cell.CELL
    if cell_name not in GATES:
        raise ValueError(f"a Network of {cell_name!r} has no torch module: only "
                         f"{', '.join(GATES)}")
    kind = GATES[cell_name][0]
    missing = [name for name in net.PARAMS if name not in params]
    extra = sorted(set(params) - set(net.PARAMS))
    if missing or extra:
        raise ValueError(f"params for this Network: {f'missing {missing}' if missing else ''}"
                         f"{'; ' if missing and extra else ''}"
                         f"{f'unexpected {extra}' if extra else ''}")
    params = {name: np.asarray(params[name]) for name in net.PARAMS}
    for name, shape in net.param_shapes().items():
        if params[name].shape != tuple(shape):
            raise ValueError(f"params[{name!r}]: expected shape {tuple(shape)}, got "
                             f"{params[name].shape}")
    keywords = {keyword: net.sizes[name] for name, keyword in SIZES.get(cell_name, {}).items()}
    H = net.hidden_size
    if "proj_size" in keywords and not 0 < keywords["proj_size"] < H:
        raise ValueError(f"P={keywords['proj_size']}, H={H}: torch.nn.LSTM needs "
                         f"0 < proj_size < hidden_size")
    keywords |= {k: getattr(net, k) for k in NETWORK}
    if module is None:
        module = _new_module(kind, net.input_size, H, np.result_type(*params.values()), keywords)
    else:
        _check_module(module, cell_name, {"input_size": net.input_size, "hidden_size": H,
                                          **keywords})
    for prefix in _prefixes(net.num_layers, net.bidirectional):
        layer = {name: params[f"{prefix}.{name}"] for name in net.cell.PARAMS}
        _write(module, cell_name, layer, f"_{prefix}",
               getattr(module, f"weight_ih_{prefix}").shape[1])
    return module


def state_from_torch(net, hx):
    """torch's initial or final states, ``(h, c)`` (an LSTM's) or ``h`` (a GRU's), each
    (num_layers * dirs, B, size), as the Network's flat state dict {"l0.a": (B, size), ...}
    (NumPy copies). Row k * dirs + d of each is layer k, direction d."""
    torch = _torch()
    tensors = (hx,) if isinstance(hx, torch.Tensor) else tuple(hx)
    states, prefixes = net.cell.STATES, _prefixes(net.num_layers, net.bidirectional)
    if len(tensors) != len(states):
        raise ValueError(f"a Network of {net.cell.CELL!r} has {len(states)} states "
                         f"({', '.join(states)}); got {len(tensors)} tensors")
    out = {}
    for s, tensor in zip(states, tensors, strict=True):
        array = tensor.detach().cpu().numpy()
        if array.ndim != 3 or array.shape[0] != len(prefixes):
            raise ValueError(f"state {s!r}: expected shape ({len(prefixes)}, B, size) "
                             f"(num_layers * dirs first), got {tuple(array.shape)}")
        out |= {f"{prefix}.{s}": array[i].copy() for i, prefix in enumerate(prefixes)}
    return out


def state_to_torch(net, state):
    """The Network's flat state dict (state0 or state_T) as torch's states: a tuple of tensors
    in the cell's STATES order, ``(h, c)`` for an LSTM, or one tensor ``h`` for a one-state cell
    (a GRU), each (num_layers * dirs, B, size)."""
    torch = _torch()
    prefixes = _prefixes(net.num_layers, net.bidirectional)
    missing = [name for name in net.STATES if name not in state]
    if missing:
        raise ValueError(f"state: missing {missing}")
    tensors = tuple(torch.from_numpy(np.stack([np.asarray(state[f"{p}.{s}"]) for p in prefixes]))
                    for s in net.cell.STATES)
    return tensors[0] if len(tensors) == 1 else tensors


def from_packed(packed, batch_first=False):
    """A ``torch.nn.utils.rnn.PackedSequence`` as ``(x, lengths)`` for a module's or Network's
    ``forward(..., lengths=lengths)``: x a padded NumPy array (T, B, ...) with zeros past each
    sequence's end, or (B, T, ...) if ``batch_first``, T the longest length; lengths int64 (B,).
    Both in the batch's original order (as ``pad_packed_sequence`` gives them)."""
    torch = _torch()
    if not isinstance(packed, torch.nn.utils.rnn.PackedSequence):
        raise ValueError(f"from_packed takes a torch.nn.utils.rnn.PackedSequence, not "
                         f"{type(packed).__name__}")
    x, lengths = torch.nn.utils.rnn.pad_packed_sequence(packed, batch_first=batch_first)
    return x.detach().cpu().numpy(), lengths.numpy().astype(np.int64)


def to_packed(y, lengths, batch_first=False):
    """A padded array y (T, B, ...) (or (B, T, ...) if ``batch_first``), e.g. a Network's
    output, and lengths (B,) as a ``PackedSequence`` (enforce_sorted=False: the batch in any
    order; a copy of y's first lengths[b] steps of each sequence b). torch's packed sequences
    hold no empty sequence, so every length must be in 1..T (and B > 0)."""
    torch = _torch()
    y = np.asarray(y)
    lengths = np.asarray(lengths)
    axis = 1 if batch_first else 0
    if y.ndim < 2:
        raise ValueError(f"y: expected a padded array ({'B, T' if batch_first else 'T, B'}, "
                         f"...), got shape {y.shape}")
    T, B = y.shape[axis], y.shape[1 - axis]
    if lengths.shape != (B,) or not np.issubdtype(lengths.dtype, np.integer):
        raise ValueError(f"lengths: expected integers of shape ({B},), got {lengths.dtype} of "
                         f"shape {lengths.shape}")
    if B == 0:
        raise ValueError("y: a batch of 0 sequences; a PackedSequence holds at least one")
    if not (lengths.min() >= 1 and lengths.max() <= T):
        raise ValueError(f"lengths: a PackedSequence needs every length in 1..{T} (T), got "
                         f"{lengths.min()}..{lengths.max()}")
    return torch.nn.utils.rnn.pack_padded_sequence(
        torch.tensor(y), torch.from_numpy(lengths.astype(np.int64)), batch_first=batch_first,
        enforce_sorted=False)
