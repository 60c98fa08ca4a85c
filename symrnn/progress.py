"""A progress bar on a terminal (tqdm, the optional extra ``plot``), nothing elsewhere."""

import sys


class _Silent:
    """What is used when there is no terminal or no tqdm: says nothing."""

    def update(self, n=1):
        pass

    def set_postfix_str(self, text):
        pass

    def close(self):
        pass


def bar(total, description, stream=None):
    """A tqdm bar on ``stream`` (stderr) when it is a terminal and tqdm is installed; else an
    object with the same methods that does nothing. ``shown(bar)`` says which."""
    stream = sys.stderr if stream is None else stream
    if not stream.isatty():
        return _Silent()
    try:
        from tqdm import tqdm
    except ImportError:
        return _Silent()
    return tqdm(total=total, desc=description, file=stream, leave=False, dynamic_ncols=True)


def shown(progress):
    """True if ``progress`` draws a bar."""
    return not isinstance(progress, _Silent)
