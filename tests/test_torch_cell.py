"""Every cell's generated backward against PyTorch autograd: symrnn.torch_cell prints the cell's
forward equations as a PyTorch step (no derivation involved) and autograd differentiates it. The
outputs, final states and every gradient (parameters, x, initial states) agree with the NumPy
and numba modules in float64 to 1e-10 relative, for every built-in and every test cell."""

import numpy as np
import pytest
from conftest import (
    BUILTIN_CELLS,
    CUSTOM_CELLS,
    get_cell,
    load_module,
    max_rel_err,
    needs_numba,
    random_problem,
)

torch = pytest.importorskip(
    "torch", reason="install symrnn[peers] (torch==2.13.0, CPU) to compare with PyTorch; CI does")

from symrnn.torch_cell import CellLoop, step_source  # noqa: E402

TOL = 1e-10
BACKENDS = ["numpy", pytest.param("numba", marks=needs_numba)]


def autograd(cell, params, x, state0, G, Gs):
    """y, state_T and the gradients of L = sum(y G) + sum_s sum(state_T[s] Gs[s]), by autograd."""
    loop = CellLoop(cell, params)
    xt = torch.tensor(x, requires_grad=True)
    s0 = {s: torch.tensor(v, requires_grad=True) for s, v in state0.items()}
    y, state_T = loop(xt, s0)
    L = (y * torch.from_numpy(G)).sum() + sum((state_T[s] * torch.from_numpy(Gs[s])).sum()
                                              for s in state_T)
    L.backward()
    grads = {k: p.grad.numpy() for k, p in loop.P.items()}
    return (y.detach().numpy(), {s: v.detach().numpy() for s, v in state_T.items()}, grads,
            xt.grad.numpy(), {s: v.grad.numpy() for s, v in s0.items()})


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", [*BUILTIN_CELLS, *CUSTOM_CELLS])
def test_backward_matches_pytorch_autograd(name, backend):
    mod = load_module(name, backend)
    params, x, state0, G, Gs = random_problem(mod, seed=3)
    y, state_T, cache = mod.forward(params, x, state0)
    grads, dx, dstate0 = mod.backward(params, cache, G, Gs)
    y_ref, state_ref, grads_ref, dx_ref, dstate0_ref = autograd(get_cell(name), params, x,
                                                                 state0, G, Gs)
    pairs = [("y", y, y_ref), ("dx", dx, dx_ref)]
    pairs += [(f"state_T[{s!r}]", state_T[s], state_ref[s]) for s in mod.STATES]
    pairs += [(f"dstate0[{s!r}]", dstate0[s], dstate0_ref[s]) for s in mod.STATES]
    pairs += [(f"grads[{k!r}]", grads[k], grads_ref[k]) for k in mod.PARAMS]
    for label, ours, theirs in pairs:
        assert np.abs(theirs).max() > 0, f"{name}: {label} is zero in PyTorch: nothing compared"
        assert max_rel_err(ours, theirs) < TOL, f"{name} ({backend}): {label}"


def test_step_is_printed_from_the_forward_equations():
    source = step_source(get_cell("lstm"))
    assert 'z_f = F.linear(torch.cat([a_prev, x], 1), P["W_f"], P["b_f"])' in source
    assert "c = Gamma_f*c_prev + Gamma_u*c_tilde" in source
    assert source.rstrip().endswith("return a, c,")


def test_an_activation_without_a_pytorch_form_is_refused(monkeypatch):
    import dataclasses

    from symrnn.activations import REGISTRY

    monkeypatch.setitem(REGISTRY, "tanh", dataclasses.replace(REGISTRY["tanh"], torch=None))
    with pytest.raises(ValueError, match="no PyTorch function for the activation 'tanh'"):
        step_source(get_cell("lstm"))
