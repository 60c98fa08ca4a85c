"""Any symrnn cell as a PyTorch module (needs torch: ``pip install 'symrnn[peers]'``).

``RNN`` has the constructor and the call of ``torch.nn.LSTM``; its forward and backward are the
generated module's (through the numpy-only network of ``symrnn.network``: stacked layers, both
directions, variable lengths), wired into autograd by one ``torch.autograd.Function``. It trains
in an ordinary PyTorch loop with any PyTorch optimizer::

    import torch
    from torch.nn.utils.rnn import pack_padded_sequence
    from symrnn.torch import RNN

    rnn = RNN("lstm_peephole", input_size=2, hidden_size=16)   # or "mycell.toml", a Cell, ...
    readout = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*rnn.parameters(), *readout.parameters()], lr=1e-2)
    x, target = torch.randn(10, 4, 2), torch.randn(4)            # x (T, B, D), time-major
    y, (a_n, c_n) = rnn(x)                                       # y (T, B, 16), a_n (1, B, 16)
    loss = torch.nn.functional.mse_loss(readout(y[-1]).squeeze(-1), target)
    opt.zero_grad(); loss.backward(); opt.step()

    packed = pack_padded_sequence(x, torch.tensor([10, 3, 7, 1]), enforce_sorted=False)
    out, (a_n, c_n) = rnn(packed)       # a PackedSequence; a_n[0, b]: after b's own last step

    deep = RNN("gru_d", 2, 16, num_layers=2, bidirectional=True, batch_first=True)
    y, h_n = deep(x.transpose(0, 1), dt=torch.rand(4, 10, 1))   # y (B, T, 32), h_n (4, B, 16)

    net, params = rnn.net, rnn.numpy_params()                    # the same model, NumPy only
    y, state_T, _ = net.forward(params, x.numpy())

The kernels are NumPy's or numba's: CPU tensors only, float32 or float64 (the parameters' dtype,
float32 unless ``dtype=`` says otherwise; ``.double()`` converts them as for any module).
``symrnn.torch_cell.CellLoop`` is the other way into PyTorch: the cell's step printed as PyTorch
code and looped in Python, differentiated by autograd (slower; an independent check of this one).
"""

import importlib.util

import numpy as np
import torch  # PyTorch itself (absolute import: this module is symrnn.torch)
from torch.autograd.function import once_differentiable
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

_DTYPES = {torch.float32: np.float32, torch.float64: np.float64}


def default_backend():
    """"numba" when numba can be imported, else "numpy"."""
    return "numba" if importlib.util.find_spec("numba") is not None else "numpy"


class RNN(torch.nn.Module):
    """A recurrent network of any symrnn cell, with the constructor and call of torch.nn.LSTM.

    ``RNN(cell, input_size, hidden_size, num_layers=1, bidirectional=False, batch_first=False,
    *, backend=None, dtype=None, device=None, **sizes)``

    - ``cell``: a built-in's name ("lstm", "gru", "lstm_peephole", ...), a ``Cell``, a TOML spec
      ("mycell.toml") or a Python file ("mycell.py:build"), as ``symrnn.get_cell`` takes.
    - ``num_layers``, ``bidirectional``, ``batch_first``: as for torch.nn.LSTM. Layer k > 0 reads
      the outputs of the layer below, both directions concatenated as PyTorch does.
    - ``backend``: "numba" or "numpy" (None: numba when it is installed).
    - ``dtype``: of the parameters, torch.float32 or torch.float64 (None: torch's default dtype).
    - ``device``: None or "cpu" (anything else is a ValueError: the kernels run on the CPU).
    - ``sizes``: the cell's other sizes, e.g. ``P=4`` for lstmp (its projection, like proj_size).

    The parameters are the network's (``net.init_params``: uniform in [-1/sqrt(H), 1/sqrt(H)]
    like nn.LSTM, drawn from a seed taken from torch's generator, so ``torch.manual_seed``
    fixes them), registered under their flat names with "." as "_": ``l0_W_f``,
    ``l1_reverse_b_o``, ...

    ``forward(input, state=None, **inputs) -> (output, state_n)``:

    - ``input``: a tensor (T, B, D) ((B, T, D) if batch_first; (T, D) for one unbatched sequence)
      or a PackedSequence, whose output is then a PackedSequence too (in the input's order).
    - ``state``: the initial states as nn.LSTM takes (h_0, c_0): a tuple with one tensor per state
      of the cell in its STATES order (the output state first), each (num_layers * dirs, B, its
      size); a single tensor for a one-state cell (gru, rnn, ...); None for zeros.
    - ``inputs``: the cell's other per-step inputs by name (gru_d: ``dt=``), each a tensor
      (T, B, its size) in the layout of ``input`` (or a PackedSequence beside a packed input);
      they reach every layer and get gradients too.
    - ``output``: (T, B, dirs * output size) (or batch-first); 0 at padded steps of a packed batch.
    - ``state_n``: the final states in the layout of ``state``; with a packed batch each sequence's
      state after its own last step.

    ``net`` is the NumPy network (``symrnn.network``) under it, ``numpy_params()`` its parameters
    as a flat dict of arrays ("l0.W_f", ...) and ``load_numpy_params(params)`` sets them, e.g.
    from ``symrnn.interop.network_from_torch``. Tensors other than CPU float32/float64, and
    shapes other than the above, are a one-line ValueError.
    """

    def __init__(self, cell, input_size, hidden_size, num_layers=1, bidirectional=False,
                 batch_first=False, *, backend=None, dtype=None, device=None, **sizes):
        super().__init__()
        from .api import get_cell, network

        if device is not None and torch.device(device).type != "cpu":
            raise ValueError(f"symrnn.torch.RNN: CPU only (its kernels are NumPy/numba), not "
                             f"device={device!r}")
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if dtype not in _DTYPES:
            raise ValueError(f"symrnn.torch.RNN: dtype: expected torch.float32 or torch.float64, "
                             f"got {dtype}")
        cell = get_cell(cell)
        self.backend = default_backend() if backend is None else backend
        self._network = dict(cell=cell, input_size=input_size, hidden_size=hidden_size,
                             backend=self.backend, num_layers=num_layers,
                             bidirectional=bidirectional, **sizes)
        self.net = network(**self._network)  # time-major: batch_first is transposed here
        self.cell, self.cell_name = cell, cell.name
        self.input_size, self.hidden_size = input_size, hidden_size
        self.num_layers, self.bidirectional = num_layers, bidirectional
        self.batch_first, self.sizes = batch_first, dict(sizes)
        self.dirs = 2 if bidirectional else 1
        module = self.net.cell
        self.states, self.inputs = tuple(module.STATES), tuple(module.INPUTS[1:])
        widths = {"D": input_size, "H": hidden_size, **sizes}
        self.widths = {v: 1 if size == 1 else widths[size] for v, size in module.SIZES.items()}
        self.prefixes = [f"l{k}" + ("_reverse" if d else "") for k in range(num_layers)
                         for d in range(self.dirs)]
        self._attrs = {name: name.replace(".", "_") for name in self.net.PARAMS}
        if len(set(self._attrs.values())) != len(self._attrs):
            raise ValueError(f"symrnn.torch.RNN: cell {cell.name!r}: two parameters' names meet "
                             f"with '.' read as '_': rename one")
        seed = int(torch.randint(0, 2**62, ()).item())  # torch.manual_seed fixes the parameters
        init = self.net.init_params(rng=seed, dtype=_DTYPES[dtype])
        for name, attr in self._attrs.items():
            self.register_parameter(attr, torch.nn.Parameter(torch.from_numpy(init[name])))

    def __getstate__(self):
        """For pickle and copy.deepcopy: the network (a module made in memory) is made anew."""
        return {**self.__dict__, "net": None}

    def __setstate__(self, state):
        super().__setstate__(state)
        from .api import network

        self.net = network(**self._network)

    def extra_repr(self):
        text = f"{self.cell_name!r}, {self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            text += f", num_layers={self.num_layers}"
        for name in ("bidirectional", "batch_first"):
            if getattr(self, name):
                text += f", {name}=True"
        text += "".join(f", {k}={v}" for k, v in self.sizes.items())
        return text + f", backend={self.backend!r}"

    def flatten_parameters(self):
        """Nothing to do (nn.LSTM's, for code that calls it)."""

    def numpy_params(self):
        """The parameters as the network's flat dict of NumPy arrays (copies), for
        ``self.net.forward`` or to save (np.savez) and run without torch."""
        return {name: getattr(self, attr).detach().cpu().numpy().copy()
                for name, attr in self._attrs.items()}

    def load_numpy_params(self, params):
        """Set the parameters from a flat dict of arrays like ``numpy_params()``'s."""
        missing = [n for n in self._attrs if n not in params]
        unexpected = [n for n in params if n not in self._attrs]
        if missing or unexpected:
            raise ValueError(f"params: missing {missing}, unexpected {unexpected}")
        with torch.no_grad():
            for name, attr in self._attrs.items():
                target = getattr(self, attr)
                value = torch.as_tensor(np.asarray(params[name]))
                if tuple(value.shape) != tuple(target.shape):
                    raise ValueError(f"params[{name!r}]: expected shape {tuple(target.shape)}, "
                                     f"got {tuple(value.shape)}")
                target.copy_(value)

    # ---------------------------------------------------------------------------------------

    def _fail(self, message):
        raise ValueError(f"symrnn.torch.RNN({self.cell_name!r}): {message}")

    def _check_tensor(self, value, name, dtype):
        if not isinstance(value, torch.Tensor):
            self._fail(f"{name}: expected a tensor, got {type(value).__name__}")
        if value.device.type != "cpu":
            self._fail(f"{name} is on {value.device}: CPU tensors only (the kernels are "
                       f"NumPy/numba; move it with .cpu())")
        if value.dtype != dtype:
            self._fail(f"{name}: dtype {value.dtype}, but the parameters are {dtype} (convert "
                       f"one: .to({dtype}) on the tensor, or .float() / .double() on the module)")

    def _params(self):
        params = [getattr(self, attr) for attr in self._attrs.values()]
        dtype = params[0].dtype
        for p in params:
            if p.device.type != "cpu":
                self._fail(f"the parameters are on {p.device}: CPU only (the kernels are "
                           f"NumPy/numba; move the module with .cpu())")
            if p.dtype not in _DTYPES or p.dtype != dtype:
                self._fail(f"the parameters must all be torch.float32 or all torch.float64, "
                           f"got {sorted({str(q.dtype) for q in params})}")
        return params, dtype

    def forward(self, input, state=None, **inputs):
        params, dtype = self._params()
        packed = isinstance(input, PackedSequence)
        unbatched = False
        if packed:
            self._check_tensor(input.data, "input", dtype)
            x, lengths = pad_packed_sequence(input)  # time-major, in the batch's own order
            lengths = lengths.numpy().astype(np.int64)
        else:
            self._check_tensor(input, "input", dtype)
            if input.dim() == 2:
                unbatched, x = True, input.unsqueeze(1)
            elif input.dim() == 3:
                x = input.transpose(0, 1) if self.batch_first else input
            else:
                layout = "(B, T, D)" if self.batch_first else "(T, B, D)"
                self._fail(f"input: expected a 3-D tensor {layout} or a PackedSequence, got "
                           f"shape {tuple(input.shape)}")
            lengths = None
        T, B = x.shape[:2]
        if x.shape[2] != self.input_size:
            self._fail(f"input: expected {self.input_size} features, got {x.shape[2]}")
        extra = self._extra_inputs(inputs, packed, unbatched, input, T, B, dtype)
        states = self._initial(state, unbatched, B, dtype)
        call = _Call(self, lengths, state is not None)
        y, *state_n = _Apply.apply(call, x, *extra, *(states or ()), *params)
        if packed:
            order = input.sorted_indices
            y_sorted = y if order is None else y.index_select(1, order)
            data = pack_padded_sequence(y_sorted, torch.from_numpy(lengths)[
                order if order is not None else slice(None)]).data
            output = PackedSequence(data, input.batch_sizes, input.sorted_indices,
                                    input.unsorted_indices)
        elif unbatched:
            output, state_n = y.squeeze(1), [s.squeeze(1) for s in state_n]
        else:
            output = y.transpose(0, 1) if self.batch_first else y
        return output, (state_n[0] if len(state_n) == 1 else tuple(state_n))

    def _extra_inputs(self, inputs, packed, unbatched, input, T, B, dtype):
        """The cell's other inputs as time-major (T, B, size) tensors, in INPUTS order: each a
        tensor in the module's layout, or a PackedSequence beside a packed input."""
        missing = [v for v in self.inputs if v not in inputs]
        unexpected = [v for v in inputs if v not in self.inputs]
        if missing or unexpected:
            takes = ", ".join(f"{v}=" for v in self.inputs) or "no other input"
            self._fail(f"missing input(s) {missing}, unexpected {unexpected} (the cell takes "
                       f"{takes})")
        out = []
        for v in self.inputs:
            value, width = inputs[v], self.widths[v]
            if isinstance(value, PackedSequence):
                if not packed or not torch.equal(value.batch_sizes, input.batch_sizes) or (
                        _order(value) != _order(input)):
                    self._fail(f"{v}: a PackedSequence only beside a packed input of the same "
                               f"lengths and order")
                self._check_tensor(value.data, v, dtype)
                value = pad_packed_sequence(value)[0]
                expected = (T, B, width)
            else:
                self._check_tensor(value, v, dtype)
                if unbatched:
                    expected = (T, width)
                    value = value.unsqueeze(1) if value.dim() == 2 else value
                elif self.batch_first:
                    expected = (B, T, width)
                    value = value.transpose(0, 1) if value.dim() == 3 else value
                else:
                    expected = (T, B, width)
            if tuple(value.shape) != (T, B, width):
                self._fail(f"{v}: expected shape {expected} like the input, got "
                           f"{tuple(inputs[v].shape)}")
            out.append(value)
        return out

    def _initial(self, state, unbatched, B, dtype):
        """The initial states as one (layers * dirs, B, size) tensor per state of the cell."""
        if state is None:
            return None
        n = len(self.states)
        states = (state,) if isinstance(state, torch.Tensor) and n == 1 else state
        if not isinstance(states, (tuple, list)) or len(states) != n:
            want = "a tensor" if n == 1 else f"a tuple of {n} tensors"
            self._fail(f"state: expected {want} ({', '.join(self.states)}), got "
                       f"{type(state).__name__}" + (f" of {len(state)}"
                                                   if isinstance(state, (tuple, list)) else ""))
        out = []
        for s, value in zip(self.states, states, strict=True):
            self._check_tensor(value, f"state {s!r}", dtype)
            if unbatched and value.dim() == 2:
                value = value.unsqueeze(1)
            shape = (self.num_layers * self.dirs, B, self.widths[s])
            if tuple(value.shape) != shape:
                self._fail(f"state {s!r}: expected shape {shape} (num_layers * dirs, B, size), "
                           f"got {tuple(value.shape)}")
            out.append(value)
        return out


def _order(packed):
    return None if packed.sorted_indices is None else packed.sorted_indices.tolist()


class _Call:
    """What one call hands _Apply beside its tensors."""

    def __init__(self, rnn, lengths, has_state):
        self.net, self.lengths, self.has_state = rnn.net, lengths, has_state
        self.inputs, self.states, self.prefixes = rnn.inputs, rnn.states, rnn.prefixes
        self.params, self.widths = tuple(rnn.net.PARAMS), rnn.widths


def _array(tensor):
    """A NumPy view of a tensor's data (a copy only if it is not contiguous)."""
    return tensor.detach().contiguous().numpy()


def _from(array):
    array = np.asarray(array)
    return torch.from_numpy(array if array.flags.writeable else array.copy())


class _Apply(torch.autograd.Function):
    """(call, x, *other inputs, *initial states (if given), *params) -> (y, *final states):
    the network's forward; backward is the network's backward."""

    @staticmethod
    def forward(ctx, call, x, *tensors):
        k, n = len(call.inputs), len(call.states) if call.has_state else 0
        inputs, states, params = tensors[:k], tensors[k:k + n], tensors[k + n:]
        params_np = {name: _array(p) for name, p in zip(call.params, params, strict=True)}
        inputs_np = {v: _array(t) for v, t in zip(call.inputs, inputs, strict=True)}
        state0 = None
        if states:
            state0 = {f"{prefix}.{s}": _array(value[i])
                      for s, value in zip(call.states, states, strict=True)
                      for i, prefix in enumerate(call.prefixes)}
        y, state_T, cache = call.net.forward(params_np, _array(x), state0, lengths=call.lengths,
                                             **inputs_np)
        ctx.call, ctx.cache, ctx.params_np = call, cache, params_np
        ctx.set_materialize_grads(False)
        y = _from(y)
        state_n = [_from(np.stack([state_T[f"{prefix}.{s}"] for prefix in call.prefixes]))
                   for s in call.states]
        # Only for autograd's check that none of them is changed in place before backward (the
        # cache reads their memory; y may share it)
        ctx.save_for_backward(x, *tensors, y)
        return (y, *state_n)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, *dstates):
        ctx.saved_tensors  # noqa: B018  (raises if one was modified in place)
        call, cache = ctx.call, ctx.cache
        dstate_T = None
        if any(d is not None for d in dstates):
            B = next(d for d in dstates if d is not None).shape[1]
            dtype = ctx.params_np[call.params[0]].dtype
            # copies: the network may hand them back as the gradients of state0
            dstate_T = {f"{prefix}.{s}": np.zeros((B, call.widths[s]), dtype=dtype)
                        if d is None else d[i].detach().numpy().copy()
                        for s, d in zip(call.states, dstates, strict=True)
                        for i, prefix in enumerate(call.prefixes)}
        dy = None if dy is None else _array(dy)
        grads, dx, dstate0, *dinputs = call.net.backward(ctx.params_np, cache, dy, dstate_T)
        dinputs = dinputs[0] if dinputs else {}
        needs = ctx.needs_input_grad  # (call, x, *inputs, *states, *params)
        k = len(call.inputs)
        out = [None, _from(dx) if needs[1] else None]
        out += [_from(dinputs[v]) if needs[2 + j] else None for j, v in enumerate(call.inputs)]
        if call.has_state:
            out += [_from(np.stack([dstate0[f"{prefix}.{s}"] for prefix in call.prefixes]))
                    if needs[2 + k + j] else None for j, s in enumerate(call.states)]
        first = 2 + k + (len(call.states) if call.has_state else 0)
        out += [_from(grads[name]) if needs[first + j] else None
                for j, name in enumerate(call.params)]
        return tuple(out)


__all__ = ["RNN", "default_backend"]
