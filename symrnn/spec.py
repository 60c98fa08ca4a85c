"""Cells from a TOML text spec, parsed without evaluating any of its text::

    name = "peephole_lite"
    states = ["a", "c"]      # the first is the output state
    inputs = ["x", "dt"]     # optional: the per-step inputs, x first (default ["x"])
    sizes = { dt = 1 }       # optional: a vector's size, a name (D, H, P, ...) or 1 (per sample)
    params = ["p_f"]         # optional: elementwise parameter vectors, shape (H,)
    doc = "..."              # optional
    equations = ["Gamma_f = sigmoid(W_f[a_prev, x] + b_f + p_f * c_prev)", "..."]

Each equation is read with ``ast.parse`` and walked through a whitelist (names, int/float literals,
``+ - * / **``, unary ``+ -``, calls of the registered activations, of SymPy's functions in
``activations.FUNCTIONS`` (``exp``, ``log``, ``max(u, v)``, ...), of ``mean(v)`` and
``layer_norm(v)`` / ``layer_norm(v, eps)``, affine maps ``W[v1, ...]``) into SymPy objects and
``CellBuilder`` calls. In a sum with exactly one affine
term, a name that is nothing else (not an input, a state, ``<state>_prev``, a param, an
equation's target) is that affine map's bias: ``W_f[a_prev, x] + b_f``.
"""

import ast
import math
import operator
import re
import tomllib
import warnings
from pathlib import Path

import sympy as sp

from .activations import FUNCTIONS, REGISTRY
from .cell import INPUT, Cell, CellBuilder, CellError
from .reductions import CALLS
from .symbols import sym

KEYS = ("name", "input", "inputs", "states", "sizes", "params", "doc", "equations")
MAX_BITS = 10_000  # a power of a number may not exceed this size (2**10**9 would never finish)

_STRING = r'"""(?:[^\\]|\\.)*?"""(?!")' r"|'''.*?'''(?!')" r'|"(?:[^"\\\n]|\\.)*"' r"|'[^'\n]*'"
_TOKEN = re.compile(r"\s+|,|#[^\n]*|(?P<string>" + _STRING + ")", re.S)
_KINDS = {ast.Attribute: "attribute access", ast.Lambda: "a lambda", ast.IfExp: "a conditional",
          ast.Compare: "a comparison", ast.BoolOp: "a boolean operator", ast.Starred: "'*'",
          ast.JoinedStr: "an f-string", ast.NamedExpr: "':='", ast.GeneratorExp: "a generator",
          ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
          ast.DictComp: "a comprehension"}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


def load_spec(path) -> Cell:
    """The cell declared by the TOML spec file at ``path``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CellError(f"{path}: cannot read the spec: {e}") from None
    return parse_spec(text, str(path))


def parse_spec(text, filename="<spec>") -> Cell:
    """The cell declared by the TOML spec ``text``; errors name ``filename`` and the line."""
    try:
        spec = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        at = re.search(r"\s*\(at line (\d+), column \d+\)$", str(e))
        where = f"{filename}:{at[1]}" if at else filename
        message = _clean(str(e)[:at.start()] if at else e)
        raise CellError(f"{where}: invalid TOML: {message}") from None
    _check_keys(spec, text, filename)
    states, params, equations = spec["states"], spec.get("params", []), spec["equations"]
    inputs, sizes = spec.get("inputs", [INPUT]), spec.get("sizes", {})
    cell = CellBuilder(spec["name"], states=states, inputs=inputs, sizes=sizes,
                       doc=spec.get("doc", ""))
    for name in params:
        cell.param(name)
    lines = _lines(text, equations)
    parsed = [_parse(eq, f"{filename}:{line}") for eq, line in zip(equations, lines, strict=True)]
    targets = {target for target, _, _, _ in parsed}
    _check_sizes(spec, text, filename, targets)
    walker = _Walker(cell, states, params, targets, inputs)
    for target, value, eq, where in parsed:
        try:
            cell.let(target, walker.expr(value))
        except _Reject as e:
            node = e.args[1]
            piece = _clean(ast.get_source_segment(eq, node))
            raise CellError(f"{where}: {e.args[0]}: {piece}") from None
        except RecursionError:
            raise CellError(f"{where}: the equation is nested too deeply: {_clean(eq)}") from None
        except CellError as e:
            raise CellError(f"{where}: {e}") from None
    try:
        return cell.build()
    except CellError as e:
        raise CellError(f"{filename}: {e}") from None


def _clean(piece, limit=120):
    """A source piece on one printable line."""
    piece = " ".join(str(piece).split())
    piece = "".join(c if c.isprintable() else repr(c)[1:-1] for c in piece)
    return piece if len(piece) <= limit else piece[:limit - 3] + "..."


def _fail(text, filename, key, what, entry=None):
    """A CellError naming the line of ``key = ...`` or, given ``entry``, of that entry of the
    table ``key`` (inline, dotted ``key.entry = ...`` or under a ``[key]`` header), and the
    line itself."""
    q = "[\"']?"  # a TOML key may be quoted
    patterns = []
    if entry is not None:
        name = q + re.escape(entry) + q
        patterns += [rf"^[ \t]*{q}{key}{q}[ \t]*=[ \t]*\{{(?:.*?,)??[ \t]*{name}[ \t]*=.*$",
                     rf"^[ \t]*{q}{key}{q}[ \t]*\.[ \t]*{name}[ \t]*=.*$",
                     rf"^[ \t]*\[[ \t]*{q}{key}{q}[ \t]*\][^\n]*\n(?:(?![ \t]*\[).*\n)*?"
                     rf"(?P<entry>[ \t]*{name}[ \t]*=.*)$"]
    patterns += [rf"^[ \t]*{q}{key}{q}[ \t]*=.*$", rf"^[ \t]*\[[ \t]*{q}{key}{q}[ \t]*\].*$"]
    for pattern in patterns:
        if line := re.search(pattern, text, re.M):
            start = line.start("entry") if "entry" in line.groupdict() else line.start()
            piece = line["entry"] if "entry" in line.groupdict() else line[0]
            at = f"{filename}:{text.count(chr(10), 0, start) + 1}"
            raise CellError(f"{at}: {what}: {_clean(piece)}")
    raise CellError(f"{filename}: {what}: {key}")


def _check_keys(spec, text, filename):
    def fail(key, what):
        _fail(text, filename, key, what)

    for key in spec:
        if key not in KEYS:
            fail(re.escape(key), f"unknown key (allowed: {', '.join(KEYS)})")
    for key in ("name", "states", "equations"):
        if key not in spec:
            raise CellError(f"{filename}: missing required key: {key}")
    for key, nonempty, kind in [("name", True, str), ("doc", False, str), ("states", True, list),
                                ("inputs", True, list), ("params", False, list),
                                ("equations", True, list)]:
        value = spec.get(key, [INPUT] if key == "inputs" else kind())
        if not isinstance(value, kind) or (kind is list and not all(
                isinstance(v, str) for v in value)) or (nonempty and not value):
            fail(key, f"{key} must be a {'non-empty ' if nonempty else ''}"
                      + ("string" if kind is str else "list of strings"))
    for key in ("name", "states", "inputs", "params"):
        for value in [spec[key]] if key == "name" else spec.get(key, []):
            if not value.isidentifier():
                fail(key, f"{value!r} in {key} is not a Python identifier")
    if spec.get("input", INPUT) != INPUT:  # optional, for readers: the first input is always x
        fail("input", f"the input of a cell is always {INPUT!r} (size D; more inputs: inputs = "
                      f"[\"x\", ...])")
    inputs = spec.get("inputs", [INPUT])
    if inputs[0] != INPUT:
        fail("inputs", f"the first input must be {INPUT!r} (size D), then the others")
    for name in inputs:
        if inputs.count(name) > 1:
            fail("inputs", f"input {name!r} is listed twice")
        if name in spec["states"] or name.endswith("_prev"):
            fail("inputs", f"input {name!r} is " + ("also a state" if name in spec["states"] else
                                                     "a previous state's name (<state>_prev)"))
    sizes = spec.get("sizes", {})
    if not isinstance(sizes, dict):
        fail("sizes", "sizes must be a table of sizes, e.g. sizes = { dt = 1, a = \"P\" }")
    for name, size in sizes.items():
        if not name.isidentifier():
            _fail(text, filename, "sizes", f"{name!r} in sizes is not a Python identifier", name)
        if not (isinstance(size, str) and size.isidentifier()) and not (
                type(size) is int and size == 1):
            _fail(text, filename, "sizes", f"the size of {name!r} must be a name (D, H, P, ...) "
                  f"or the number 1 (one number per sample), not {size!r}", name)
    for name in inputs[1:]:
        if name not in sizes:
            fail("inputs", f"give the size of the input {name!r} (sizes = {{ {name} = 1 }} for one "
                           f"number per sample, or a name such as D or H)")
    doc = spec.get("doc", "")
    if '"""' in doc or "\\" in doc or not all(c.isprintable() or c in "\n\t" for c in doc):
        # the doc is pasted into the generated module's docstring: it must not end that string
        fail("doc", 'doc may not contain """, backslashes or control characters')


def _check_sizes(spec, text, filename, targets):
    """Every name in ``sizes`` is an input, a state, a param or an equation's target."""
    known = (set(spec.get("inputs", [INPUT])) | set(spec["states"]) | set(spec.get("params", []))
             | targets)
    for name in spec.get("sizes", {}):
        if name not in known:
            _fail(text, filename, "sizes", f"sizes names {name!r}, which is not an input, a state, "
                  f"one of params nor an equation's target", name)


def _lines(text, equations):
    """The line of each equation's string (tomllib gives no positions): scan the array."""
    for key in re.finditer(r"""^[ \t]*(equations|"equations"|'equations')[ \t]*=[ \t]*\[""",
                           text, re.M):
        lines, pos, found = [], key.end(), []
        while (token := _TOKEN.match(text, pos)) is not None:
            if token["string"]:
                lines.append(text.count("\n", 0, pos) + 1)
                try:
                    found.append(tomllib.loads(f"s = {token['string']}")["s"])
                except tomllib.TOMLDecodeError:  # not the real array (e.g. inside another string)
                    break
            pos = token.end()
        if found == equations:
            return lines
    return ["?"] * len(equations)


def _parse(eq, where):
    """``(target, value node, eq, where)`` of one equation ``NAME = EXPR`` (nothing evaluated)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarnings about the text, not ours to print
            body = ast.parse(eq, mode="exec").body
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        why = getattr(e, "msg", None) or str(e) or type(e).__name__
        raise CellError(f"{where}: invalid equation ({why}): {_clean(eq)}") from None
    if (len(body) != 1 or not isinstance(body[0], ast.Assign) or len(body[0].targets) != 1
            or not isinstance(body[0].targets[0], ast.Name)):
        raise CellError(f"{where}: an equation must be one assignment NAME = EXPR: {_clean(eq)}")
    target = body[0].targets[0].id
    if target.startswith("_"):
        raise CellError(f"{where}: names may not start with '_': {target}")
    return target, body[0].value, eq, where


class _Reject(Exception):
    """(what is wrong, the offending AST node)."""


class _Walker:
    """Turns whitelisted expression nodes into SymPy objects, declaring affine maps on the way."""

    def __init__(self, cell, states, params, targets, inputs=(INPUT,)):
        self.cell, self.states, self.params, self.targets = cell, states, params, targets
        self.inputs = tuple(inputs)
        self.bias = {}  # id(affine subscript node) -> its bias name
        self.dropped = set()  # id(bias name nodes): they read as 0, being inside the affine map
        self.planned = set()  # id(+/- nodes) whose sum was searched for a bias

    def free(self, name):
        """A name that is nothing else yet, so may only be a new parameter (a weight or bias)."""
        return not (name.startswith("_") or name in self.inputs or name.endswith("_prev")
                    or name in REGISTRY or name in FUNCTIONS or name in CALLS
                    or name in self.states or name in self.params
                    or name in self.targets)

    def expr(self, node):
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            if isinstance(node.op, (ast.Add, ast.Sub)) and id(node) not in self.planned:
                self.plan(node)
            return self.binop(node, self.expr(node.left), self.expr(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
            value = self.expr(node.operand)
            return -value if isinstance(node.op, ast.USub) else value
        handle = {ast.Name: self.name, ast.Constant: self.number, ast.Call: self.call,
                  ast.Subscript: self.affine}.get(type(node))
        if handle is not None:
            return handle(node)
        what = _KINDS.get(type(node), f"this syntax ({type(node).__name__})")
        raise _Reject(f"{what} is not allowed in an equation", node)

    def terms(self, node, sign):
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            self.planned.add(id(node))
            right = -sign if isinstance(node.op, ast.Sub) else sign
            return self.terms(node.left, sign) + self.terms(node.right, right)
        return [(sign, node)]

    def plan(self, node):
        """Find the bias of the sum rooted at ``node``, if it has one."""
        terms = self.terms(node, 1)
        free = [(s, t) for s, t in terms if isinstance(t, ast.Name) and self.free(t.id)]
        if not free:
            return
        affines = [(s, t) for s, t in terms if isinstance(t, ast.Subscript)]
        (sign, name), count = free[0], len(affines)
        if count != 1:
            why = "its sum has no affine term W[...]" if not count else f"its sum has {count} " \
                  "affine terms (give each its own bias: W1[...] + b1 + W2[...] + b2 is ambiguous)"
            raise _Reject(f"undefined name {name.id!r} cannot be a bias: {why}", node)
        if len(free) > 1:
            raise _Reject(f"an affine map has one bias, but this sum adds several undefined names "
                          f"({', '.join(t.id for _, t in free)})", node)
        if sign != affines[0][0]:
            raise _Reject(f"bias {name.id!r} must have the same sign as its affine map", node)
        self.bias[id(affines[0][1])] = name.id
        self.dropped.add(id(name))

    def binop(self, node, left, right):
        op = type(node.op)
        if op is ast.Pow:
            if not isinstance(right, sp.Rational):
                raise _Reject("the exponent must be a number", node.right)
            if left.is_Rational and abs(right) * max(abs(left.p), left.q).bit_length() > MAX_BITS:
                raise _Reject("the number is too large", node)
        if (op is ast.Div and right == 0) or (op is ast.Pow and left == 0 and right < 0):
            raise _Reject("division by zero", node)
        return _BINOPS[op](left, right)

    def name(self, node):
        name = node.id
        if id(node) in self.dropped:
            return sp.Integer(0)
        if name.startswith("_"):
            raise _Reject("names may not start with '_'", node)
        if name == INPUT:
            return self.cell.x
        if name in self.inputs:
            return self.cell.input(name)
        if name.endswith("_prev"):
            if name[:-5] not in self.states:
                raise _Reject(f"not a previous state (states: {', '.join(self.states)})", node)
            return self.cell.prev(name[:-5])
        if name in REGISTRY:
            raise _Reject("an activation must be called with one argument", node)
        if name in FUNCTIONS or name in CALLS:
            raise _Reject(f"{name} is a function: call it, e.g. {name}(v)", node)
        if self.free(name):
            raise _Reject("undefined name (not an input, a state, <state>_prev, a param, an "
                          "equation's target, nor the bias of the one affine map W[...] in its "
                          "sum)", node)
        return sym(name)

    def number(self, node):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = {bool: "a boolean", str: "a string", bytes: "a string"}.get(type(value))
            raise _Reject(f"only int and float numbers are allowed, not {kind or 'this'}", node)
        if not math.isfinite(value):
            raise _Reject("numbers must be finite", node)
        return sp.Rational(str(value))

    def call(self, node):
        known = {**{name: (entry.function, 1) for name, entry in REGISTRY.items()},
                 **{name: (function, nargs) for name, (function, nargs, _) in FUNCTIONS.items()},
                 **CALLS}
        if not (isinstance(node.func, ast.Name) and node.func.id in known):
            raise _Reject(f"only these functions can be called ({', '.join(sorted(known))})",
                          node.func)
        function, nargs = known[node.func.id]
        counts = nargs if isinstance(nargs, tuple) else (nargs,)
        if (node.keywords or len(node.args) not in counts
                or any(isinstance(a, ast.Starred) for a in node.args)):
            words = {1: "one", 2: "two"}
            how = " or ".join(words[n] for n in counts)
            raise _Reject(f"{node.func.id} takes {'exactly ' if len(counts) == 1 else ''}{how} "
                          f"positional argument{'s' if counts != (1,) else ''}", node)
        return function(*(self.expr(a) for a in node.args))  # the builder checks eps

    def affine(self, node):
        if not isinstance(node.value, ast.Name):
            raise _Reject("only a bare name can be subscripted, as an affine map W[...]", node)
        weight = node.value.id
        if not self.free(weight):
            raise _Reject("an affine map's weight needs a name of its own", node.value)
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if not items:
            raise _Reject("an affine map reads at least one vector", node)
        for item in items:
            if isinstance(item, (ast.Slice, ast.Starred)):
                raise _Reject("an affine map reads expressions, not slices or '*'", item)
        inputs = [self.expr(item) for item in items]
        return self.cell.affine(weight, inputs, self.bias.get(id(node)))
