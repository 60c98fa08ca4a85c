"""Execute docs/derivations.ipynb and write it back with its outputs, as a person sees it.

    python docs/run_notebook.py            # refresh docs/derivations.ipynb in place
    python docs/run_notebook.py OUT.ipynb  # execute, write the result elsewhere
    python docs/run_notebook.py --html     # also render docs/derivations.html (needs nbconvert)

Needs ``pip install -e '.[test]'`` (nbclient, nbformat, ipykernel). The kernel is the Python
running this script: a kernel spec pointing at ``sys.executable`` is written to a temporary
directory, so no ``python -m ipykernel install`` is needed and no other interpreter's kernel is
picked up. tests/test_notebook.py executes the notebook the same way.

``--html`` renders the executed notebook with nbconvert's HTML exporter (``pip install nbconvert``;
not a dependency of symrnn). Its page typesets the math with MathJax 2 from a CDN, whose TeX
input refuses a macro (``\\mathcal``) followed by more than 5 KB of math in one block, which the
longer derivations (lstm_ln's backward) are: the page's MathJax configuration raises that limit.
"""

import json
import sys
import tempfile
from pathlib import Path

NOTEBOOK = Path(__file__).resolve().with_name("derivations.ipynb")
KERNEL = "symrnn-python"  # the temporary kernel spec's name; the notebook says "python3"
MATHJAX_TEX = "TeX: {"  # where nbconvert's template configures MathJax's TeX input
MAXBUFFER = "TeX: {\n                    MAXBUFFER: 64 * 1024,  // lstm_ln's backward is 6 KB"


def execute(path=NOTEBOOK, timeout=300):
    """The notebook at ``path`` executed (in its own directory) by a kernel on this interpreter;
    raises ``nbclient.exceptions.CellExecutionError`` if a cell fails."""
    import nbformat
    from jupyter_client import KernelManager
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory() as tmp:
        spec_dir = Path(tmp, "kernels", KERNEL)
        spec_dir.mkdir(parents=True)
        spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": f"Python ({sys.executable})", "language": "python"}
        (spec_dir / "kernel.json").write_text(json.dumps(spec))
        km = KernelManager(kernel_name=KERNEL,
                           kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec_dir.parent)]))
        client = NotebookClient(nb, km=km, timeout=timeout,
                                resources={"metadata": {"path": str(Path(path).parent)}})
        client.execute()
    return nb


def html(nb):
    """The executed notebook as a standalone HTML page (nbconvert), its math typeset by MathJax."""
    from nbconvert import HTMLExporter

    page, _ = HTMLExporter().from_notebook_node(nb)
    if page.count(MATHJAX_TEX) != 1:
        raise RuntimeError("nbconvert's template changed: found no one place to configure MathJax")
    return page.replace(MATHJAX_TEX, MAXBUFFER)


def main(argv=None):
    import nbformat

    args = sys.argv[1:] if argv is None else argv
    with_html = "--html" in args
    args = [a for a in args if a != "--html"]
    out = Path(args[0]) if args else NOTEBOOK
    nb = execute(NOTEBOOK)
    nbformat.write(nb, out)
    print(f"wrote {out}")
    if with_html:
        page = out.with_suffix(".html")
        page.write_text(html(nb), encoding="utf-8")
        print(f"wrote {page}")


if __name__ == "__main__":
    main()
