"""Cells from TOML text specs (symrnn/spec.py): the same code as the Python DSL, correct gradients
for cells no Python file declares, and hostile specs rejected without anything being executed."""

import ast
import builtins
import json
import warnings
from pathlib import Path

import pytest
import sympy as sp
import sympy.parsing.sympy_parser as sympy_parser
from conftest import CUSTOM_CELLS, FD_TOL, gradient_errors

import symrnn
from symrnn import spec as spec_module
from symrnn.cell import CellError, Elementwise
from symrnn.spec import load_spec, parse_spec
from symrnn.symbols import sym

SPECS = Path(__file__).parent / "specs"

HEADER = 'name = "evil"\nstates = ["a"]\nequations = [\n  "a = tanh(W_a[a_prev, x] + b_a)",\n'


def _error(path_or_text, filename=None):
    """The one-line CellError message of loading a spec file (or parsing spec text)."""
    with pytest.raises(CellError) as info:
        if filename is None:
            load_spec(path_or_text)
        else:
            parse_spec(path_or_text, filename)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


def _spec(tmp_path, equations, head=HEADER, name="spec.toml"):
    """Write HEADER plus ``equations`` (one per line, TOML-quoted); the first is on line 5."""
    path = tmp_path / name
    path.write_text(head + "".join(f"  {json.dumps(eq)},\n" for eq in equations) + "]\n")
    return path


# --------------------------------------------------------------------------------------------
# The same cells as the Python DSL, byte for byte
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_builtin_cells_as_specs_generate_identical_source(name):
    cell = load_spec(SPECS / f"{name}.toml")
    assert symrnn.generate_source(cell) == symrnn.generate_source(name)


@pytest.mark.parametrize("name", ["gating", "halves", "kinked", "mix", "nested", "peephole"])
def test_custom_dsl_cells_as_specs_generate_identical_source(name):
    """The conftest cells: params, peepholes, nested and bias-free affine maps, x first, a state
    not called a, equations in another order (nested.toml), every other activation (kinked)."""
    cell = load_spec(SPECS / f"{name}.toml")
    assert symrnn.generate_source(cell) == symrnn.generate_source(CUSTOM_CELLS[name]())


# --------------------------------------------------------------------------------------------
# Cells never declared in Python: load, and gradients against finite differences
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, params", [
    ("peephole_lite", ("p_f", "W_f", "b_f", "W_c", "b_c")),
    ("torch_gru", ("W_r", "b_r", "W_u", "b_u", "W_in", "b_in", "W_hn", "b_hn")),
])
def test_new_cells_load_and_pass_the_gradient_check(name, params):
    cell = load_spec(SPECS / f"{name}.toml")
    mod = symrnn.load(cell)
    assert mod.CELL == name and mod.PARAMS == params
    shapes = mod.param_shapes(3, 4)
    if name == "torch_gru":  # two nested affine maps, each reading one vector, each with a bias
        assert shapes["W_in"] == (4, 3) and shapes["W_hn"] == (4, 4) and shapes["b_hn"] == (4,)
    errors = gradient_errors(mod, seed=1)
    vanishing = {k: g for k, (_, g) in errors.items() if g < 1e-3}
    assert not vanishing, f"degenerate test problem, gradients ~0: {vanishing}"
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert not bad, f"{name}: max relative error vs finite differences >= {FD_TOL}: {bad}"


def test_float_literals_become_exact_rationals():
    cell = parse_spec('name = "f"\nstates = ["a"]\nequations = '
                      '["a = 0.5 * a_prev + 0.1 * tanh(W_a[a_prev, x] + b_a) + 2"]')
    (node,) = [n for n in cell.nodes if isinstance(n, Elementwise) and n.out == sym("a")]
    assert not node.expr.atoms(sp.Float)
    assert node.expr.atoms(sp.Number) == {sp.Rational(1, 2), sp.Rational(1, 10), sp.Integer(2)}
    assert node.expr.coeff(sym("a_prev")) == sp.Rational(1, 2)


# --------------------------------------------------------------------------------------------
# Hostile specs: rejected, with file and line, and nothing executed
# --------------------------------------------------------------------------------------------

PAYLOADS = [  # (payload, what the message says); MARKER becomes an absolute path in tmp_path
    ("__import__('os').system('touch MARKER')", "only these functions can be called"),
    ("open('MARKER', 'w')", "only these functions can be called"),
    ("sigmoid(__import__('os').system('touch MARKER'))", "only these functions"),
    ("W[open('MARKER', 'w')]", "only these functions can be called"),
    ("eval('1')", "only these functions can be called"),
    ("eval(\"open('MARKER', 'w')\")", "only these functions can be called"),
    ("exec(\"open('MARKER', 'w')\")", "only these functions can be called"),
    ("x.__class__", "attribute access is not allowed"),
    ("W[a_prev].__dict__", "attribute access is not allowed"),
    ("(lambda: 0)()", "only these functions can be called"),
    ("(lambda: 0)", "a lambda is not allowed"),
    ("[i for i in x]", "a comprehension is not allowed"),
    ("(i for i in x)", "a generator is not allowed"),
    ("(y := 1)", "':=' is not allowed"),
    ("'a string'", "not a string"),
    ("f'{x}'", "an f-string is not allowed"),
    ("sigmoid(z=x)", "exactly one positional argument"),
    ("sigmoid(*x)", "exactly one positional argument"),
    ("sigmoid(a_prev, x)", "exactly one positional argument"),
    ("a_prev if x else b", "a conditional is not allowed"),
    ("x < 1", "a comparison is not allowed"),
    ("x and a_prev", "a boolean operator is not allowed"),
    ("W[1:2]", "not slices"),
    ("W[a_prev, *x]", "not slices or '*'"),
    ("W[a_prev][x]", "only a bare name can be subscripted"),
    ("_secret", "may not start with '_'"),
    ("{'k': x}", "not allowed"),
    ("a_prev @ a_prev", "not allowed"),
]


@pytest.mark.parametrize("where", ["whole", "inside"])
@pytest.mark.parametrize("payload, says", PAYLOADS)
def test_hostile_specs_are_rejected_without_executing_anything(tmp_path, payload, says, where):
    marker = tmp_path / "MARKER"
    payload = payload.replace("MARKER", str(marker))
    equation = (f"z = {payload}" if where == "whole"
                else f"z = sigmoid(W_z[a_prev, x] + b_z + 0 * ({payload}))")
    path = _spec(tmp_path, [equation], name="bad.toml")
    message = _error(path)
    assert message.startswith(f"{path}:5: "), message
    assert says in message, message
    assert not marker.exists()


@pytest.mark.parametrize("payload", ["__import__('os').system('touch MARKER')",
                                     "open('MARKER', 'w')"])
def test_the_marker_would_show_execution(tmp_path, payload):
    """The check above can fail: evaluating such a payload does create the marker."""
    marker = tmp_path / "MARKER"
    result = eval(payload.replace("MARKER", str(marker)))  # the test's own payload, not user text
    if hasattr(result, "close"):
        result.close()
    assert marker.exists()


@pytest.mark.parametrize("statement", [
    "import os", "a = tanh(W_a[a_prev, x] + b_a); import os", "a = b = tanh(W_a[a_prev, x])",
    "x.y = tanh(W_a[a_prev, x])", "a += 1", "a: int = 1", "tanh(W_a[a_prev, x])",
    "W[x] = tanh(W_a[a_prev, x])", "_a = tanh(W_a[a_prev, x] + b_a)",
])
def test_only_single_assignments_to_a_name(tmp_path, statement):
    message = _error(_spec(tmp_path, [statement]))
    assert message.startswith(f"{tmp_path / 'spec.toml'}:5: "), message


def test_parsing_evaluates_no_text(monkeypatch):
    """With eval, exec, compiling to code and SymPy's string parser disabled (compiling to an AST,
    which is all ast.parse does, stays allowed), every spec still parses."""
    real_compile = builtins.compile

    def forbidden(*args, **kwargs):
        raise AssertionError(f"text evaluated: {args!r}")

    def ast_only(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:
            forbidden(source)
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(builtins, "compile", ast_only)
    monkeypatch.setattr(sympy_parser, "parse_expr", forbidden)
    for path in sorted(SPECS.glob("*.toml")):
        assert load_spec(path).name == path.stem
    with pytest.raises(CellError, match="only these functions"):
        parse_spec(HEADER + '  "z = eval(\'1\')",\n]')
    with pytest.raises(AssertionError, match="text evaluated"):  # the patch is in force
        eval("1")


def test_spec_module_calls_nothing_that_evaluates_text():
    tree = ast.parse(Path(spec_module.__file__).read_text())
    banned = {"eval", "exec", "compile", "sympify", "parse_expr", "S", "__import__", "literal_eval"}
    called = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value.id if isinstance(node.func.value, ast.Name) else "?"
            called.add(f"{owner}.{node.func.attr}" if owner == "re" else node.func.attr)
    assert "re.compile" in called and "parse" in called  # the walk sees calls
    assert not called & banned, called & banned


# --------------------------------------------------------------------------------------------
# Clear one-line errors, with file and line
# --------------------------------------------------------------------------------------------

H_ERRORS = [  # (equation, message expected after "FILE:5: ")
    ("z = swish(W_z[a_prev, x] + b_z)", "only these functions can be called ("),
    ("z = tanh(W_z[a_prev, x] + b_z) + max(a_prev)", "max takes exactly two positional arguments"),
    ("z = tanh(layer_norm(W_z[a_prev, x], -1))", "layer_norm's eps must be a positive number"),
    ("z = tanh(W_x[x] + W_h[a_prev] + b)", "undefined name 'b' cannot be a bias: its sum has 2 "
                                           "affine terms"),
    ("z = tanh(W_z[a_prev, x] + b_z) + c0", "undefined name 'c0' cannot be a bias: its sum has "
                                            "no affine term"),
    ("z = tanh(W_z[a_prev, x] + b1 + b2)", "one bias, but this sum adds several undefined names"
                                           " (b1, b2)"),
    ("z = tanh(b_z - W_z[a_prev, x])", "bias 'b_z' must have the same sign as its affine map"),
    ("z = tanh(W_z[a_prev, x]) * g", "undefined name"),
    ("z = tanh(W_z[a_prev, x]) * h_prev", "not a previous state (states: a): h_prev"),
    ("z = tanh(W_z[a_prev, x]) ** a_prev", "the exponent must be a number: a_prev"),
    ("z = tanh(W_z[a_prev, x]) * 9**9**9**9", "the number is too large"),
    ("z = tanh(W_z[a_prev, x]) / (1 - 1)", "division by zero"),
    ("z = tanh(W_z[a_prev, x]) * True", "only int and float numbers are allowed, not a boolean"),
    ("z = tanh(W_z[a_prev, x]) * 1e999", "numbers must be finite"),
    ("z = tanh(W_z[a_prev, x]) * 1j", "only int and float numbers are allowed"),
    ("z = tanh", "an activation must be called with one argument"),
    ("z = tanh(W_z[])", "invalid equation"),
    ("z = tanh(a[x])", "an affine map's weight needs a name of its own: a"),
    ("z = tanh(W_z[()])", "an affine map reads at least one vector"),
]


@pytest.mark.parametrize("equation, says", H_ERRORS)
def test_equation_errors_name_file_line_and_piece(tmp_path, equation, says):
    path = _spec(tmp_path, [equation])
    message = _error(path)
    assert message.startswith(f"{path}:5: "), message
    assert says in message, message


def test_unknown_activation_message():
    message = _error(HEADER + '  "z = swish(W_z[a_prev, x] + b_z)",\n]', "cell.toml")
    assert message.startswith("cell.toml:5: only these functions can be called (")
    assert "sigmoid" in message and "tanh" in message and message.endswith("): swish")


def test_lines_are_found_in_any_toml_layout():
    text = '''name = "layout"
doc = """
equations = ["a = nope"]
"""
states = ["a"]
equations = [  # the array: comments, literal and multi-line strings
  # a comment with "a quoted string", a ] bracket and 'quotes'
  'Gamma = sigmoid(W_g[a_prev, x] + b_g)',  "c = Gamma", """
b = Gamma""",
  "a = Gamma * tanh(W_a[a_prev, x] + b_a) + b + c + nope",
]
'''
    assert _error(text, "layout.toml").startswith(
        "layout.toml:10: undefined name 'nope' cannot be a bias: its sum has no affine term")
    # an array-like text that is not TOML (only reachable through a string) is passed over
    fake = 'doc = """\nequations = ["\\q"]\n"""\nequations = [\n  "a = 1",\n]'
    assert spec_module._lines(fake, ["a = 1"]) == [5]
    assert _error(text.replace("Gamma\"\"\"", "1 +\"\"\""), "<x>").startswith("<x>:8: invalid")


Q3 = '"""'


@pytest.mark.parametrize("doc", [  # TOML values of doc
    f"'''x{Q3}\nimport os; os.system('touch MARKER')\n{Q3}'''",  # ends the module docstring
    r'"\\N{BAD}"',  # a backslash: an invalid escape in the docstring
    r'"red \u001b[31m"',  # a control character (a terminal escape)
])
def test_doc_cannot_escape_the_generated_docstring(tmp_path, doc):
    """The doc goes into the generated module's docstring, which symrnn.load executes."""
    marker = tmp_path / "MARKER"
    path = tmp_path / "doc.toml"
    path.write_text('name = "d"\nstates = ["a"]\ndoc = ' + doc.replace("MARKER", str(marker))
                    + '\nequations = ["a = tanh(W_a[a_prev, x] + b_a)"]\n')
    assert _error(path).startswith(f"{path}:3: doc may not contain")
    assert not marker.exists()


def test_a_plain_doc_reaches_the_generated_module():
    doc = "A plain RNN, from a spec.\n\nIt says 'tanh' and \"quotes\" and [brackets]."
    cell = parse_spec('name = "d"\nstates = ["a"]\ndoc = ' + json.dumps(doc)
                      + '\nequations = ["a = tanh(W_a[a_prev, x] + b_a)"]\n')
    assert cell.doc == doc and symrnn.load(cell).__doc__.count(doc) == 1


@pytest.mark.parametrize("string", ['''"""z = "s""""''', """'''z = 's''''"""])
def test_lines_of_multiline_strings_ending_in_a_quote(string):
    assert _error(f"{HEADER}  {string},\n]", "q.toml").startswith("q.toml:5: only int and float")


def test_syntax_warnings_of_the_text_are_not_raised(tmp_path):
    """An invalid escape makes ast.parse warn; with warnings as errors the message is unchanged."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        message = _error(_spec(tmp_path, ["z = '\\d'"]))
    assert "only int and float numbers are allowed, not a string: '\\d'" in message


@pytest.mark.parametrize("text, says", [
    ('name = "c1"\nstates = ["a"]\nequations = [\n  "a = tanh(W[a_prev, x] + b)"\n  "z = 1"\n]',
     "spec.toml:5: invalid TOML: "),
    ('name = "c1"\nstates = ["a"]\n', "spec.toml: missing required key: equations"),
    ('name = "c1"\nequations = ["a = tanh(W[a_prev, x] + b)"]', "spec.toml: missing required "
                                                              "key: states"),
    ('name = "c1"\nstates = ["a"]\nequations = ["a = tanh(W[a_prev, x] + b)"]\nnmae = "u"\n',
     "spec.toml:4: unknown key (allowed: name, input, inputs, states, sizes, params, doc, "
     'equations): nmae = "u"'),
    ('name = "c1"\nstates = "a"\nequations = ["a = tanh(W[a_prev, x] + b)"]',
     'spec.toml:2: states must be a non-empty list of strings: states = "a"'),
    ('name = "c1"\nstates = []\nequations = ["a = tanh(W[a_prev, x] + b)"]',
     "spec.toml:2: states must be a non-empty list of strings"),
    ('name = "c1"\nstates = ["a"]\nequations = ["a = tanh(W[a_prev, x] + b)", 1]',
     "spec.toml:3: equations must be a non-empty list of strings"),
    ('name = "c1"\nstates = ["a"]\nparams = "p"\nequations = ["a = tanh(W[a_prev, x] + b)"]',
     "spec.toml:3: params must be a list of strings"),
    ('name = "c1"\nstates = ["a", "c\\nd"]\nequations = ["a = tanh(W[a_prev, x] + b)"]',
     "spec.toml:2: 'c\\nd' in states is not a Python identifier: states = [\"a\", \"c\\nd\"]"),
    ('name = 7\nstates = ["a"]\nequations = ["a = tanh(W[a_prev, x] + b)"]',
     "spec.toml:1: name must be a non-empty string: name = 7"),
    ('name = "c1"\nstates = ["a"]\nparams = ["p"]\nequations = ["a = tanh(W[a_prev, x] + b)"]',
     "spec.toml: cell 'c1': parameter 'p' is declared but never used"),
    ('name = "c1"\nstates = ["a"]\nequations = ["a = tanh(W[a_prev, x] + b) * g", "g = a"]',
     "spec.toml: cell 'c1': cyclic dependency within one step"),
    ('name = "c1"\nstates = ["a", "c"]\nequations = ["a = tanh(W[a_prev, x] + b)"]',
     "spec.toml: cell 'c1': state 'c' is never updated"),
    ('name = "c1"\nstates = ["a"]\nequations = ["a = tanh(W[a_prev] + b)"]',
     "spec.toml: cell 'c1': the input x is never read"),
])
def test_spec_level_errors(text, says):
    message = _error(text, "spec.toml")
    assert message.startswith(says), message


def test_default_filename_and_missing_file(tmp_path):
    message = _error(HEADER + '  "z = open(1)",\n]', "<spec>")
    assert message.startswith("<spec>:5: only these functions")
    with pytest.raises(CellError, match=r"^<spec>:5: only these functions can be called"):
        parse_spec(HEADER + '  "z = open(1)",\n]')
    missing = tmp_path / "missing.toml"
    assert _error(missing).startswith(f"{missing}: cannot read the spec")


def test_input_key_is_optional_and_always_x(tmp_path):
    body = 'states = ["a"]\nequations = ["a = tanh(W_a[a_prev, x] + b_a)"]\n'
    (tmp_path / "ok.toml").write_text('name = "r"\ninput = "x"\n' + body)
    assert load_spec(tmp_path / "ok.toml").name == "r"
    (tmp_path / "bad.toml").write_text('name = "r"\ninput = "u"\n' + body)
    with pytest.raises(CellError, match=r"bad.toml:2: the input of a cell is always 'x'"):
        load_spec(tmp_path / "bad.toml")


# --------------------------------------------------------------------------------------------
# Inputs beyond x and sizes beyond D and H (issue 14)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, without", [("lstmp", 'sizes = { a = "P" }\n'),
                                           ("gru_d", "sizes = { dt = 1 }\n")])
def test_lstmp_and_gru_d_as_specs_build_the_builtin_cells(name, without):
    """The files write the built-ins exactly: the same Cell (nodes, params, vectors, made nodes,
    inputs, sizes, per-sample scalars, requirements, doc)."""
    path = SPECS / f"{name}.toml"
    cell, builtin = load_spec(path), symrnn.get_cell(name)
    assert cell.nodes == builtin.nodes and cell.params == builtin.params
    assert cell.sizes == builtin.sizes and cell.inputs == builtin.inputs
    assert cell == builtin  # every field of the dataclass
    assert cell.size_names == (("D", "H", "P") if name == "lstmp" else ("D", "H"))
    # the comparison sees the sizes: the same equations without the sizes key differ
    text = path.read_text()
    assert without in text
    if name == "lstmp":
        assert parse_spec(text.replace(without, "")).sizes != builtin.sizes
    else:
        assert "give the size of the input 'dt'" in _error(text.replace(without, ""), "g.toml")


def test_highway_reads_x_elementwise_and_needs_d_equal_h():
    cell = load_spec(SPECS / "highway.toml")
    assert cell.requires == (("D", "H", "the equation of a"),)
    assert cell.size("x") == "D" and cell.size("a") == "H"
    (update,) = [n for n in cell.nodes if isinstance(n, Elementwise) and n.out == sym("a")]
    assert sym("x") in update.expr.free_symbols  # x elementwise, not only through W[...]
    mod = symrnn.load(cell)
    errors = gradient_errors(mod, seed=1, D=4, H=4)
    vanishing = {k: g for k, (_, g) in errors.items() if g < 1e-3}
    assert not vanishing, f"degenerate test problem, gradients ~0: {vanishing}"
    bad = {k: e for k, (e, _) in errors.items() if not e < FD_TOL}
    assert not bad, f"highway: max relative error vs finite differences >= {FD_TOL}: {bad}"


TIME = 'name = "timed"\nstates = ["a"]\ninputs = ["x", "dt"]\nsizes = { dt = 1 }\nequations = [\n'


def test_extra_inputs_are_names_in_equations_and_affine_maps_read_them():
    cell = parse_spec(TIME + '  "g = sigmoid(W_t[dt] + b_t) + dt",\n'
                             '  "a = g * tanh(W_a[a_prev, x, dt] + b_a) + (1 - g) * a_prev",\n]')
    assert cell.inputs == ("x", "dt") and cell.size("dt") == 1
    affines = {a.weight.name: a for a in cell.affines}
    assert affines["W_t"].inputs == (sym("dt"),) and affines["W_t"].bias == sym("b_t")
    assert affines["W_a"].inputs == (sym("a_prev"), sym("x"), sym("dt"))
    assert cell.param_shape("W_t", 3, 4) == (4, 1) and cell.param_shape("W_a", 3, 4) == (4, 8)
    (g,) = [n for n in cell.nodes if isinstance(n, Elementwise) and n.out == sym("g")]
    assert sym("dt") in g.expr.free_symbols  # an input, not taken for a second bias
    # an input read only elementwise, beside an affine map: not its bias either
    cell = parse_spec(TIME + '  "a = tanh(W_a[a_prev, x] + b_a + dt)",\n]')
    assert cell.affines[0].bias == sym("b_a")
    # the optional input key stays compatible with inputs
    assert parse_spec('input = "x"\n' + TIME + '  "a = tanh(W_a[a_prev, x] + dt)",\n]').inputs \
        == ("x", "dt")


SIZE_ERRORS = [  # (lines after name and states, the line named, what the message says)
    ('inputs = ["x", "dt"]\nsizes = { dt = 2 }', 4, "the size of 'dt' must be a name (D, H, P, "
     "...) or the number 1 (one number per sample), not 2: sizes = { dt = 2 }"),
    ('inputs = ["x", "dt"]\nsizes = { dt = "" }', 4, "the size of 'dt' must be a name"),
    ('inputs = ["x", "dt"]\nsizes = { dt = "2P" }', 4, "the size of 'dt' must be a name"),
    ('inputs = ["x", "dt"]\nsizes = { dt = 1.0 }', 4, "not 1.0"),
    ('inputs = ["x", "dt"]\nsizes = { dt = true }', 4, "not True"),
    ('inputs = ["x", "dt"]\nsizes = { dt = 1, a = "" }', 4, "the size of 'a' must be a name"),
    ('inputs = ["x", "dt"]\nsizes.dt = 2', 4, "not 2: sizes.dt = 2"),
    ('inputs = ["x", "dt"]\nsizes = { dt = 1, q = "P" }', 4, "sizes names 'q', which is not an "
     "input, a state, one of params nor an equation's target"),
    ('inputs = ["x", "dt"]\nsizes = { dt = 1, a_prev = "P" }', 4, "sizes names 'a_prev'"),
    ('inputs = ["x", "dt"]\nsizes = { "d t" = 1 }', 4, "'d t' in sizes is not a Python "
     "identifier"),
    ('inputs = ["x", "dt"]\nsizes = "dt"', 4, "sizes must be a table of sizes"),
    ('inputs = ["x", "dt"]', 3, "give the size of the input 'dt' (sizes = { dt = 1 }"),
    ('inputs = "x"', 3, 'inputs must be a non-empty list of strings: inputs = "x"'),
    ("inputs = []", 3, "inputs must be a non-empty list of strings"),
    ('inputs = ["x", 1]', 3, "inputs must be a non-empty list of strings"),
    ('inputs = ["x", "d t"]', 3, "'d t' in inputs is not a Python identifier"),
    ('inputs = ["dt", "x"]\nsizes = { dt = 1 }', 3, "the first input must be 'x' (size D)"),
    ('inputs = ["dt"]\nsizes = { dt = 1 }', 3, "the first input must be 'x'"),
    ('inputs = ["x", "x"]', 3, "input 'x' is listed twice"),
    ('inputs = ["x", "a"]\nsizes = { a = 1 }', 3, "input 'a' is also a state"),
    ('inputs = ["x", "a_prev"]\nsizes = { a_prev = 1 }', 3, "input 'a_prev' is a previous "
     "state's name"),
    ('input = "dt"\ninputs = ["x", "dt"]\nsizes = { dt = 1 }', 3, "the input of a cell is "
     "always 'x'"),
]


@pytest.mark.parametrize("lines, line, says", SIZE_ERRORS)
def test_bad_inputs_and_sizes_name_file_and_line(lines, line, says):
    text = ('name = "s"\nstates = ["a"]\n' + lines
            + '\nequations = ["a = tanh(W_a[a_prev, x] + b_a) * dt"]\n')
    message = _error(text, "sizes.toml")
    assert message.startswith(f"sizes.toml:{line}: "), message
    assert says in message, message


def test_a_bad_size_under_a_table_header_names_its_own_line():
    text = ('name = "s"\nstates = ["a"]\ninputs = ["x", "dt"]\nequations = ["a = tanh(W_a[a_prev, '
            'x] + b_a) * dt"]\n\n[sizes]  # a table of its own\na = "P"\ndt = 2\n')
    assert _error(text, "t.toml") == ("t.toml:8: the size of 'dt' must be a name (D, H, P, ...) or "
                                      "the number 1 (one number per sample), not 2: dt = 2")
    assert parse_spec(text.replace("dt = 2", "dt = 1")).size("a") == "P"
