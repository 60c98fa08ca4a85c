"""The forget-gate bias at initialisation (Gers, Schmidhuber & Cummins 2000; Jozefowicz et al.
2015): a constant added to the parameter ``b_f``, for the cells that have one."""

FORGET_BIAS_PARAM = "b_f"


def initial_params(module, input_size, hidden_size, *, rng, dtype, forget_bias):
    """``module.init_params`` (uniform in ±1/√H, as PyTorch), then ``forget_bias`` added to every
    entry of ``b_f``. Returns (params, whether the cell has ``b_f``)."""
    params = module.init_params(input_size, hidden_size, rng=rng, dtype=dtype)
    has_it = FORGET_BIAS_PARAM in params
    if has_it:
        params[FORGET_BIAS_PARAM] += params[FORGET_BIAS_PARAM].dtype.type(forget_bias)
    return params, has_it


def note(cell, has_it, forget_bias):
    """A line saying what happened to the forget bias, or None when there is nothing to say."""
    if has_it or forget_bias == 0:
        return None
    return (f"note: {cell} has no parameter {FORGET_BIAS_PARAM}; --forget-bias {forget_bias:g} "
            f"does not apply to it (its init_params is used as is)")
