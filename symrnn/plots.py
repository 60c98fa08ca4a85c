"""PNG figures for `symrnn vanish` and `symrnn train` (matplotlib: the optional extra `plot`)."""

import io

import numpy as np

from .output import write_atomic


class PlotExtraMissing(Exception):
    """matplotlib is not installed."""

    def __init__(self):
        super().__init__("--plot needs matplotlib: pip install 'symrnn[plot]' (or: pip install "
                         "matplotlib)")


def require():
    """Raise PlotExtraMissing now, before a long run, if matplotlib cannot be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise PlotExtraMissing() from None


def _figure():
    require()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt, *plt.subplots(figsize=(8, 4.5), layout="constrained")


def _save(plt, fig, path):
    data = io.BytesIO()
    fig.savefig(data, format="png", dpi=120)
    plt.close(fig)
    write_atomic(path, data.getvalue())


def vanish(decays, path, title, threshold):
    """Relative gradient norm against distance, log-log, one line per cell. A line stops where
    the norm is exactly 0 (below the smallest number of the dtype)."""
    plt, fig, ax = _figure()
    for decay in decays:
        relative = decay.relative()[1:]
        shown = np.where(relative > 0, relative, np.nan)
        ax.plot(np.arange(1, len(relative) + 1), shown, label=decay.cell, linewidth=1.5)
    ax.axhline(threshold, color="grey", linestyle=":", linewidth=1)
    ax.text(1, threshold, f" {threshold:g}", color="grey", va="bottom")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1, max(2, decays[0].steps - 1))  # the whole sequence, where the lines end or not
    ax.set_xlabel("distance d from the last step (steps)")
    ax.set_ylabel(r"$\|\partial L/\partial x^{\langle T-d\rangle}\| \,/\, "
                  r"\|\partial L/\partial x^{\langle T\rangle}\|$")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    _save(plt, fig, path)


def losses(result, path, title, target):
    """Training MSE per step (and its mean over 100 steps), test MSE at the checks, the
    baseline of always predicting 1 and the target."""
    plt, fig, ax = _figure()
    steps = np.arange(1, result.steps + 1)
    train = np.asarray(result.train)
    ax.plot(steps, train, color="tab:blue", alpha=0.25, linewidth=0.5, label="train MSE (batch)")
    if len(train) >= 100:
        mean = np.convolve(train, np.ones(100) / 100, mode="valid")
        ax.plot(steps[99:], mean, color="tab:blue", label="train MSE (mean of 100 steps)")
    checked, test = zip(*result.test, strict=True)
    ax.plot(checked, test, "o-", color="tab:orange", markersize=3, label="test MSE")
    ax.axhline(result.baseline, color="grey", linestyle="--", linewidth=1,
               label=f"always 1: {result.baseline:.3f}")
    ax.axhline(target, color="grey", linestyle=":", linewidth=1, label=f"target {target:g}")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("MSE")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8)
    _save(plt, fig, path)
