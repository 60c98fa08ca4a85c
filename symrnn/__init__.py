"""symrnn: recurrent cells written once in SymPy; derived BPTT, LaTeX and standalone NumPy code.

    import symrnn
    cell = symrnn.get_cell("lstm")            # or a Cell of your own (symrnn.cell.CellBuilder)
    derivation = symrnn.derive(cell)          # the BPTT equations, as data
    source = symrnn.generate_source(cell)     # a standalone NumPy module, as text
    lstm = symrnn.load(cell)                  # that module, compiled in memory
    net = symrnn.network("lstm", 3, 8, num_layers=2, bidirectional=True)  # layers of a cell
"""

__version__ = "0.1.0"

from .api import derive, generate_source, get_cell, load, load_network, network  # noqa: E402
from .reductions import layer_norm, mean  # noqa: E402  (in a cell's equations)

__all__ = ["derive", "generate_source", "get_cell", "layer_norm", "load", "load_network", "mean",
           "network", "__version__"]
