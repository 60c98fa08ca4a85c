"""Run from a directory where `symrnn generate lstm gru rnn` just wrote ./generated/."""

import numpy as np

from generated import gru, lstm, rnn

for module in (lstm, gru, rnn):
    assert module.__file__.startswith(__import__("os").getcwd()), module.__file__
    params = module.init_params(3, 5, rng=0)
    x = np.random.default_rng(1).standard_normal((4, 2, 3))
    y, state_T, cache = module.forward(params, x)
    grads, dx, dstate0 = module.backward(params, cache, np.ones_like(y))
    # one central difference against backward, on the first weight
    name = module.PARAMS[0]
    bumped = {k: v.copy() for k, v in params.items()}
    bumped[name][0, 0] += 1e-5
    up = module.forward(bumped, x)[0].sum()
    bumped[name][0, 0] -= 2e-5
    down = module.forward(bumped, x)[0].sum()
    numeric = (up - down) / 2e-5
    assert abs(numeric - grads[name][0, 0]) < 1e-6 * max(1.0, abs(numeric)), module.CELL
    print(f"{module.CELL}: y {y.shape}, dx {dx.shape}, d{name}[0, 0] = {grads[name][0, 0]:.6f} "
          f"(finite difference {numeric:.6f})")
