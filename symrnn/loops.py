"""loops(derivation, plan) -> Loops: one step of a cell as fused loops over (batch, unit).

A compiled backend (numba) runs the whole time loop itself. Inside a step, everything between two
matrix products is one loop over the batch ``b`` and the units ``j``, computing every value of that
stretch as a scalar; a matrix product ends the stretch (it needs all units), and so does a
loop that would touch more than ``MAX_ARRAYS`` arrays (LLVM would not vectorise it). So a step
is a sequence of phases, each a ``Gemm`` or a ``Loop``, decided here from the Derivation and the
Plan (the same slots, stacked matrices and cache as the NumPy module):

- forward: the recurrent products ``P_v = v @ fused_v_T`` as soon as an affine map needs them; a
  pre-activation is ``z = X[t, b, col] + P_v[b, col'] + ... + bias[col]``, where ``X`` holds the
  input's products for the chunk (one matrix product before the loop);
- backward: every adjoint of the Derivation as a scalar (``dz_f = dGamma_f*Gamma_f*(1 - Gamma_f)``,
  no activation-derivative buffers), the projections ``Q_v = dZ[:, run] @ fused_v`` as products
  once their ``dz`` are complete.

A value read by a later phase of its step is stored where the cache or the step keeps it
(``A_seq``, ``a_seq``, ``dZ_seq``, ...) or, failing that, in a (B, H) scratch array ``name_buf``.
Numbers print as ``real(...)``, the dtype of the arrays, so float32 stays float32; tanh prints as
the module's ``_tanh`` (float32: ``approx.tanh32``, which vectorises; float64: libm).
"""

from dataclasses import dataclass

import sympy as sp

from .activations import is_activation, lookup
from .cell import Affine
from .derive import DY, Derivation
from .derive import units as units_of
from .lower import Plan, _gates, _order, _size_expr, _slice, _width
from .printing import CodePrinter, ShapePrinter
from .reductions import UNITS, mean, unitsum
from .symbols import adjoint, next_adjoint, prev, sequence, sym

H = sp.Symbol("H")
_J = sp.Symbol("j")

# The most arrays one fused loop reads or writes (a row view counts as the array it views, the
# homes of values a later loop reads included). LLVM vectorises a loop only if it can rule out
# that its arrays overlap, with few enough runtime checks: the lstm_peephole forward, one loop
# over 13 arrays, stayed scalar ("too many memory checks needed"); cut into loops of at most 10,
# its forward ran 1.4-2x faster here. No other built-in's loop is cut.
MAX_ARRAYS = 10


@dataclass(frozen=True)
class Gemm:
    """``out = left @ matrix`` (``left`` may be a slice of columns: gemm reads it in place)."""

    left: str
    matrix: str
    out: str
    notes: tuple[str, ...] = ()  # the equation it computes, as a comment


@dataclass(frozen=True)
class Loop:
    """``for b``: ``views``; ``for j``: ``loads``, then ``lines`` (each ``target = code``, or a
    comment: the equation of the line after it); ``starts`` and ``ends``: per b, before and after
    the loop over j (a sum over the units begun at 0, and stored where it is kept).

    A value stored in a slot of a wide array (``A_seq[t, b, H:2*H]``) is written through a
    one-unit-wide view of it per ``b`` (``Gamma_u_row``): written at ``[b, H + j]``, LLVM cannot
    rule out that two slots' writes collide, and leaves the loop unvectorised (4x slower here)."""

    views: tuple[str, ...]
    loads: tuple[str, ...]
    lines: tuple[str, ...]
    starts: tuple[str, ...] = ()  # per b, before the loop over j: the sums over the units begun
    ends: tuple[str, ...] = ()  # per b, after the loop over j: the sums over the units stored
    per_sample: bool = False  # every line computes a per-sample scalar: no loop over j
    width: str = "H"  # the units j runs over: the size of the loop's vectors


@dataclass(frozen=True)
class Loops:
    forward: tuple[Gemm | Loop, ...]
    backward: tuple[Gemm | Loop, ...]
    forward_args: tuple[str, ...]  # the forward kernel's arrays, after (t0, steps)
    backward_args: tuple[str, ...]  # the backward kernel's arrays, after (t0, t1)
    forward_scratch: tuple[tuple[str, str], ...]  # (name, columns): (B, columns), one step
    backward_scratch: tuple[tuple[str, str], ...]
    carries: tuple[tuple[str, str, str], ...]  # (state, dX_next buffer, dX_prev buffer)
    x_buffers: tuple[tuple[str, str, int], ...]  # (name, product matrix, first slot)
    functions: tuple[str, ...] = ()  # of exp, log, log1p: those the kernels call (as _exp, ...)
    sizes: tuple[str, ...] = ()  # a cell with sizes or inputs beyond D, H and x: the kernels
    # take every size as an argument ("D", "H", "P"); () reads B and H off the output state
    input_grads: tuple[tuple[str, str, bool], ...] = ()  # (input, gradient, loop writes it first)
    # The kernels' arrays as the k-th block of samples passes them: whole, but for backward's
    # sums over the samples (a vector parameter's gradient), of which each block has its own
    forward_blocks: tuple[str, ...] = ()
    backward_blocks: tuple[str, ...] = ()

    @staticmethod
    def numbers(phases):
        """Whether a kernel's lines write numbers (``real(...)``)."""
        return any("real(" in line for p in phases if isinstance(p, Loop)
                   for line in p.lines + p.starts + p.ends)


class ScalarPrinter(CodePrinter):
    """Scalar code for compiled loops: numbers as ``real(...)`` (the arrays' dtype), small integer
    powers as products, activations from their registry NumPy form, ``max``/``min``/``abs``."""

    def _print(self, expr, **kwargs):
        if is_activation(expr):
            entry = lookup(expr.func)
            if entry.numpy is None:
                name = "_tanh" if entry.name == "tanh" else f"np.{entry.name}"
                return f"{name}({self._print(expr.args[0])})"
            return self._print(_real(entry.numpy(expr.args[0])))
        return super()._print(expr, **kwargs)

    def parenthesize(self, item, level, strict=False):
        """An activation printed in its NumPy form has that form's precedence
        (``sigmoid(z)`` is a sum: ``dz*(real(1/2)*_tanh(...) + real(1/2))``)."""
        if is_activation(item) and lookup(item.func).numpy is not None:
            item = _real(lookup(item.func).numpy(item.args[0]))
        return super().parenthesize(item, level, strict)

    def __init__(self, settings=None, units=(UNITS,)):
        super().__init__(settings)
        self.called = set()  # of exp, log, log1p: those printed (the module defines them)
        self.units = frozenset(units)  # the symbols of sizes (H, P): numbers, real(H)

    def _approximated(self, name, expr):  # float32: symrnn.approx's, which vectorises
        self.called.add(name)
        return f"_{name}({self._print(expr.args[0])})"

    def _print_exp(self, expr):
        return self._approximated("exp", expr)

    def _print_log(self, expr):
        return self._approximated("log", expr)

    def _print_log1p(self, expr):
        return self._approximated("log1p", expr)

    def _print_tanh(self, expr):  # SymPy's own, in a registry NumPy form (sigmoid's)
        return f"_tanh({self._print(expr.args[0])})"

    def doprint(self, expr, assign_to=None):
        return super().doprint(_real(sp.sympify(expr)), assign_to)

    def _print_Integer(self, expr):
        return f"real({int(expr)})"

    def _print_Rational(self, expr):
        return f"real({expr.p}/{expr.q})"

    def _print_Float(self, expr):
        return f"real({float(expr)!r})"

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp.is_Integer and 2 <= exp <= 3:
            return "*".join([self.parenthesize(base, sp.printing.precedence.PRECEDENCE["Mul"])]
                            * int(exp))
        if exp == -1:
            return f"real(1)/{self.parenthesize(base, sp.printing.precedence.PRECEDENCE['Pow'])}"
        return super()._print_Pow(expr, rational)

    def _print_Abs(self, expr):
        return f"abs({self._print(expr.args[0])})"

    def _print_Mul(self, expr):
        """A product with a denominator of power 2 or more: ``u/(v*v)`` (a power prints as a
        product, which the denominator must enclose)."""
        num, den = [], []
        for f in expr.as_ordered_factors():
            if isinstance(f, sp.Pow) and f.exp.is_Integer and f.exp < -1:
                den.append(sp.Pow(f.base, -f.exp, evaluate=False))
            else:
                num.append(f)
        if not den:
            return super()._print_Mul(expr)
        top = sp.Mul(*num, evaluate=False) if len(num) > 1 else (num[0] if num else None)
        bottom = sp.Mul(*den, evaluate=False) if len(den) > 1 else den[0]
        text = "real(1)" if top is None else self.parenthesize(
            top, sp.printing.precedence.PRECEDENCE["Mul"])
        return f"{text}/({self._print(bottom)})"

    def _fold(self, ufunc, args):
        name = {"np.maximum": "max", "np.minimum": "min"}[ufunc]
        text = self._print(args[0])
        for arg in args[1:]:
            text = f"{name}({text}, {self._print(arg)})"
        return text

    def _print_positive(self, expr):
        return f"real({self._print(expr.args[0])} > real(0))"

    def _print_Heaviside(self, expr):  # Heaviside(0) = 1/2 (activations: the kinks)
        arg = self._print(expr.args[0])
        return f"(real({arg} > real(0)) + real({arg} >= real(0)))*real(1/2)"

    def _print_sign(self, expr):
        arg = self._print(expr.args[0])
        return f"(real({arg} > real(0)) - real({arg} < real(0)))"

    def _print_Symbol(self, expr):
        return f"real({expr.name})" if expr in self.units else super()._print_Symbol(expr)


def _real(expr):
    """``expr`` with every number a symbol ``real(...)`` (exponents left as they are), so that it
    prints without parentheses and computes in the arrays' dtype."""
    if expr.is_Number and expr != -1:  # -1 prints as a minus sign
        value = sp.Abs(expr)
        text = str(value) if value.is_Integer else (
            f"{value.p}/{value.q}" if value.is_Rational else repr(float(value)))
        return sp.Symbol(f"real({text})") * (-1 if expr < 0 else 1)
    if isinstance(expr, sp.Pow):
        return sp.Pow(_real(expr.base), expr.exp, evaluate=False)
    if not expr.args:
        return expr
    return expr.func(*(_real(a) for a in expr.args))


def _size(expr):
    return ShapePrinter().doprint(expr)


@dataclass(frozen=True)
class _Line:
    """One line of a step's loops, and what decides where it goes."""

    text: str
    reads: frozenset  # the symbols it reads
    defines: sp.Symbol | None
    after: int  # how many of the step's matrix products it waits for
    view: str | None  # a row view it writes through: "Gamma_f_row = A_seq[t, b, :H]"
    stores: sp.Symbol | None  # the symbol it writes to its home (the cache, a carried buffer)
    note: str | None  # the equation it computes, a comment above it
    arrays: frozenset  # the arrays its text indexes (its loads are counted apart)
    total: tuple[str, str] | None = None  # a sum over the units: (its accumulator, which
    # ``text`` adds to, and the scale its value takes once complete, per b: " / real(H)")
    size: str | int = "H"  # the units the line runs over (1: one number per sample)


class _Step:
    """The phases of one step being built. Each line goes into the earliest loop where what it
    reads is ready: after the loops that define its symbols, and after the matrix products whose
    output it reads (``after``: the number of products it waits for)."""

    def gemm(self, gemm):
        self.gemms.append(gemm)
        return len(self.gemms)  # lines reading its output wait for this many products

    def __init__(self, units=frozenset({UNITS})):
        self.gemms = []  # a Gemm, or None: a loop boundary after a sum over the units
        self.lines = []  # _Line
        self.units = units  # the symbols of sizes, which no loop loads

    def line(self, text, reads=frozenset(), defines=None, after=0, view=None, stores=None,
             note=None, arrays=(), total=None, size="H"):
        """A ``_Line`` (its fields say what each argument is)."""
        self.lines.append(_Line(text, frozenset(reads) - self.units, defines, after, view,
                                stores, note, frozenset(arrays), total, size))

    def sum_over_units(self, symbol, code, reads, scale="", note=None, size="H"):
        """``symbol = sum_j code`` (times ``scale``) over ``size`` units: accumulated in the loop
        that has what ``code`` reads, ready for the loops after the boundary it adds (its number
        returned)."""
        ready, total = len(self.gemms) + 1, f"{symbol.name}_total"
        self.line(f"{total} += {code}", reads, symbol, ready, note=note, total=(total, scale),
                  size=size)
        return self.gemm(None)

    def finish(self, outside, home, scalar):
        """The phases: loop 0, product 1, loop 1, ...; empty loops left out, and a loop that
        would touch more than MAX_ARRAYS arrays cut in several. A value defined by an earlier loop
        of the step is stored at its ``home`` there and loaded from it; any other value is loaded
        from ``outside``. ``home(s, False)``: where s would be kept, without claiming a buffer.
        ``scalar(s)``: whether s is a per-sample scalar (a loop of those alone runs once per b)."""
        phase_of, by_phase = {}, [[] for _ in range(len(self.gemms) + 1)]
        for line in self.lines:
            waits = line.after if line.total is None else 0  # a sum waits for its reads alone
            at = max([waits] + [phase_of[s] for s in line.reads if s in phase_of])
            by_phase[at].append(line)
            if line.defines is not None and line.defines not in phase_of:
                phase_of[line.defines] = at if line.total is None else line.after

        def arrays(cut, read_later):
            """The arrays a loop of these lines touches: its own, its loads, and the homes of
            the values it defines that a later loop reads."""
            touched, defined = set(), set()
            for line in cut:
                touched |= line.arrays | {_array(home(s, False) if s in phase_of else outside(s))
                                          for s in line.reads - defined}
                defined.add(line.defines)
            return touched | {_array(home(s, False)) for s in defined & read_later}

        def cut(lines, limit):
            """The lines in order, cut into loops of at most ``limit`` arrays (homes left out)
            and of one size each (a loop runs over the units of its vectors)."""
            loops, current = [], []
            for line in lines:
                if current and (len(arrays(current + [line], set())) > limit
                                or width(current) not in (1, line.size) and line.size != 1):
                    loops.append(current)
                    current = []
                current.append(line)
            return loops + [current]

        slots = []  # (phase, lines): the loops, in order; a phase's first one follows its product
        for at, lines in enumerate(by_phase):
            later = set().union(*(line.reads for rest in by_phase[at + 1:] for line in rest))
            for limit in range(MAX_ARRAYS, 0, -1):  # tighter until the homes fit too
                loops = cut(lines, limit)
                reads_after = [later.union(*(line.reads for c in loops[i + 1:] for line in c))
                               for i in range(len(loops))]
                if all(len(arrays(c, r)) <= MAX_ARRAYS
                       for c, r in zip(loops, reads_after, strict=True)):
                    break
            slots += [(at, c) for c in loops]
        owner, placed, views, stored = {}, [[] for _ in slots], [[] for _ in slots], set()
        starts, ends = [[] for _ in slots], [[] for _ in slots]
        for i, (_, lines) in enumerate(slots):
            for line in lines:
                if line.note is not None:
                    placed[i].append((f"# {line.note}", set(), None))
                if line.total is not None:  # a sum: started per b, stored after the units
                    total, scale = line.total
                    starts[i].append(f"{total} = real(0)")
                    ends[i].append(f"{home(line.defines)} = {total}{scale}")
                    stored.add((line.defines, i))
                    placed[i].append((line.text, line.reads, None))
                    owner[line.defines] = i
                    continue
                placed[i].append((line.text, line.reads, line.defines))
                if line.view is not None and line.view not in views[i]:
                    views[i].append(line.view)
                if line.defines is not None and line.defines not in owner:
                    owner[line.defines] = i
                if line.stores is not None:
                    stored.add((line.stores, i))
        loads = []
        for i, lines in enumerate(placed):
            mine, defined = [], set()
            for _, reads, defines in lines:
                for s in sorted(reads - defined, key=lambda s: s.name):
                    if s in owner and owner[s] < i:
                        if (s, owner[s]) not in stored:
                            placed[owner[s]].append((f"{home(s)} = {s.name}", {s}, None))
                            stored.add((s, owner[s]))
                        mine.append(f"{s.name} = {home(s)}")
                    elif s not in owner:
                        mine.append(f"{s.name} = {outside(s)}")
                    defined.add(s)
                defined.add(defines)
            loads.append(mine)
        phases = []
        for i, (at, _) in enumerate(slots):
            if at and (i == 0 or slots[i - 1][0] != at) and self.gemms[at - 1] is not None:
                phases.append(self.gemms[at - 1])
            if placed[i]:
                once = (not starts[i] and width(slots[i][1]) == 1  # dx[t, b, j] = dmu/D: no
                        and all((d is None or scalar(d)) and all(map(scalar, reads))
                                for _, reads, d in placed[i]))
                phases.append(Loop(tuple(views[i]), tuple(loads[i]),
                                   tuple(text for text, _, _ in placed[i]), tuple(starts[i]),
                                   tuple(ends[i]), once, str(width(slots[i][1], "H"))))
        return tuple(phases)


def width(lines, default=1):
    """The size the vectors of these lines have (1 if they are all per-sample scalars)."""
    return next((line.size for line in lines if line.size != 1), default)


def _array(where):
    """The array of a load or store: ``c_seq[t, b, j]`` -> ``c_seq``."""
    return where.partition("[")[0]


def loops(derivation: Derivation, plan: Plan) -> Loops:
    cell = derivation.cell
    units = {units_of(n) for n in cell.size_names}
    code = ScalarPrinter(units=units)
    notes = plan.text["notes"]
    gates = _gates(cell)
    order = _order(cell, gates)
    slot_of = {a.out: k for k, a in enumerate(order)}
    direct = {gate.out: slot_of[z] for z, gate in gates.items()}
    keep_Z = "Z_seq" in plan.cache
    states, kept = set(cell.states), set(plan.kept)
    carried_in = {next_adjoint(s) for s in cell.states}
    scratch, bscratch = {}, {}  # the (B, size) arrays of a forward step, of a backward step
    start = [sp.Integer(0)]  # the first column of each slot of Z
    for a in order:
        start.append(start[-1] + _width(a.out, cell))

    def span(k):  # the columns of slot k
        return _slice(start[k], start[k + 1], start[-1])

    def col(k, first=0):  # the column of unit j of slot k, in an array whose column 0 is slot first
        return _size(start[k] - start[first] + _J)

    def slots(product):
        return range(product.first, product.first + len(product.parts))

    per_sample = set(cell.scalars) | {d.name for d in derivation.per_sample}

    def scalar(s):
        return s.name in per_sample

    def unit(s):  # the index of unit j of s: 0 for a per-sample scalar
        return "0" if scalar(s) else "j"

    def size(s):  # the units s has, as code ("H", "P"), or 1
        return 1 if scalar(s) else _size(_width(s, cell))

    def cached(s):
        """Where forward keeps s for the backward (or None)."""
        if s in direct:
            return f"A_seq[t, b, {col(direct[s])}]"
        if s in slot_of:
            return f"Z_seq[t, b, {col(slot_of[s])}]" if keep_Z else None
        if s.name in states:
            return f"{sequence(s.name)}[t + 1, b, j]"
        if s.name in kept:
            return f"{sequence(s.name)}[t, b, {unit(s)}]"
        for state in cell.states:
            if s == prev(state):
                return f"{sequence(state)}[t, b, j]"
        return None

    def home(s, register=True):
        where = cached(s)
        if where is None:
            if register:
                scratch[f"{s.name}_buf"] = str(size(s))
            where = f"{s.name}_buf[b, {unit(s)}]"
        return where

    read = set()  # the inputs a kernel reads elementwise

    def outside(s):
        if s.name in cell.vectors:
            return f"param_{s.name}[j]"
        if s == DY:
            return "dy_seq[t, b, j]"
        if s in carried_in:
            return f"{s.name}_buf[b, j]"
        if s.name in cell.inputs:  # the kernel's x_seq is the module's x
            read.add(s.name)
            return f"{sequence(s.name)}[t, b, {unit(s)}]"
        where = cached(s)
        assert where is not None, f"{s} is neither cached nor computed in the step"
        return where

    # ---- forward ----
    x_buffers = tuple((f"X_{i + 1}" if len(plan.x_products) > 1 else "X", p.matrix, p.first,
                       p.series, p.size) for i, p in enumerate(plan.x_products))
    by_vector = {}
    for p in plan.products:
        by_vector.setdefault(p.vector, []).append(p)
        scratch["P_" + p.matrix[len("fused_"):]] = _size(start[p.first + len(p.parts)]
                                                         - start[p.first])

    def z_terms(k):
        """(array, index) of every term of slot k's pre-activation."""
        terms = [(name, f"t - t0, b, {col(k, first)}")
                 for (name, _, first, _, _), p in zip(x_buffers, plan.x_products, strict=True)
                 if k in slots(p)]
        terms += [(f"P_{p.matrix[len('fused_'):]}", f"b, {col(k, p.first)}")
                  for p in plan.products if k in slots(p)]
        if order[k].bias is not None:
            terms.append(("bias", col(k)))
        return terms

    step, waits = _Step(units), {}
    for node in derivation.forward:
        if isinstance(node, Affine):
            for v in node.inputs:
                if v.name not in cell.inputs and v.name not in waits:
                    for p in by_vector[v.name]:
                        waits[p.matrix] = step.gemm(Gemm(f"{p.series}[t, b0:b1]", f"{p.matrix}_T",
                                                         f"P_{p.matrix[len('fused_'):]}[b0:b1]"))
                    waits[v.name] = True
            k = slot_of[node.out]
            terms = z_terms(k)
            step.line(f"{node.out.name} = " + " + ".join(f"{a}[{i}]" for a, i in terms),
                      defines=node.out, arrays=[a for a, _ in terms],
                      note=notes.get(node.out.name), size=size(node.out),
                      after=max([waits[p.matrix] for p in plan.products if k in slots(p)],
                                default=0))
        elif isinstance(node.expr, mean):
            (v,) = node.expr.args
            step.sum_over_units(node.out, v.name, {v}, f" / real({size(v)})",
                                notes.get(node.out.name), size(v))
            continue  # stored where it is kept once the sum is complete
        else:
            step.line(f"{node.out.name} = {code.doprint(node.expr)}",
                      node.expr.free_symbols, node.out, note=notes.get(node.out.name),
                      size=size(node.out))
        if node.out in direct or (node.out in slot_of and keep_Z):
            k = direct.get(node.out, slot_of.get(node.out))
            array = "A_seq" if node.out in direct else "Z_seq"
            step.line(f"{node.out.name}_row[j] = {node.out.name}", {node.out},
                      view=f"{node.out.name}_row = {array}[t, b, {span(k)}]", stores=node.out,
                      arrays=[array], size=size(node.out))
        elif cached(node.out) is not None:
            step.line(f"{cached(node.out)} = {node.out.name}", {node.out}, stores=node.out,
                      arrays=[_array(cached(node.out))], size=size(node.out))
    forward = step.finish(outside, home, scalar)
    forward_inputs = tuple(sequence(v) for v in cell.inputs if v in read)

    # ---- backward ----
    read.clear()
    carries = tuple((s, f"d{s}_next_buf", f"d{s}_prev_buf") for s in cell.states)
    carry_buffer = {adjoint(prev(s).name): prv for s, _, prv in carries}
    carry_out = {d: f"{buffer}[b, j]" for d, buffer in carry_buffer.items()}
    dz_slot = {adjoint(a.out.name): k for k, a in enumerate(order)}
    step, input_grads = _Step(units), []
    for a in derivation.backward:
        if a.of.name in cell.inputs:  # its elementwise terms here; its products after the chunk
            input_grads.append((a.of.name, a.out.name, a.expr != 0))
            if a.expr == 0:
                continue
        products, after = by_vector.get(a.of.name, []), 0
        for p in products:
            name = p.matrix[len("fused_"):]
            if a.out in carry_out and a.expr == 0 and len(products) == 1 and p.cols == ":":
                step.gemm(Gemm("dZ_seq[t - t0, b0:b1]", p.matrix, f"{carry_buffer[a.out]}[b0:b1]",
                               tuple(n for n in [notes.get(a.out.name)] if n)))
                break  # the carried gradient is the product alone, straight into its buffer
            bscratch["Q_" + name] = p.size
            left = "dZ_seq[t - t0, b0:b1" + ("]" if p.cols == ":" else f", {p.cols}]")
            after = step.gemm(Gemm(left, p.matrix, f"Q_{name}[b0:b1]"))
        else:
            qs = [f"Q_{p.matrix[len('fused_'):]}" for p in products]
            expr = a.expr
            for k, total in enumerate(sorted(a.expr.atoms(unitsum), key=sp.default_sort_key)):
                name = sym(f"{a.out.name}_sum" + (str(k + 1) if k else ""))
                per_sample.add(name.name)
                summed = total.args[0]
                after = max(after, step.sum_over_units(
                    name, code.doprint(summed), summed.free_symbols,
                    size=width_of(summed, cell, per_sample)))
                expr = expr.xreplace({total: name})
            text = " + ".join(([code.doprint(expr)] if expr != 0 else [])
                              + [f"{q}[b, j]" for q in qs])
            text = text or "real(0)"
            if a.of.name in cell.vectors:
                step.line(f"grad_{a.of.name}[j] += {text}", expr.free_symbols, after=after,
                          arrays=[f"grad_{a.of.name}", *qs], size=size(a.of))
                continue
            if a.of.name in cell.inputs:
                step.line(f"{a.out.name}[t, b, {unit(a.of)}] = {text}", expr.free_symbols,
                          after=after, note=notes.get(a.out.name), arrays=[a.out.name],
                          size=size(a.of))
                continue
            step.line(f"{a.out.name} = {text}", expr.free_symbols, a.out, after,
                      note=notes.get(a.out.name), arrays=qs,
                      size=1 if scalar(a.out) else size(a.of))  # dvar/H: one per sample
            if a.of in slot_of:
                step.line(f"{a.out.name}_row[j] = {a.out.name}", {a.out},
                          view=f"{a.out.name}_row = dZ_seq[t - t0, b, {span(slot_of[a.of])}]",
                          stores=a.out, arrays=["dZ_seq"], size=size(a.of))
            if a.out in carry_out:
                step.line(f"{carry_out[a.out]} = {a.out.name}", {a.out}, stores=a.out,
                          arrays=[_array(carry_out[a.out])], size=size(a.of))

    def home_backward(s, register=True):
        if s in carry_out:
            return carry_out[s]
        if s in dz_slot:  # dz_f: its column of dZ
            return f"dZ_seq[t - t0, b, {col(dz_slot[s])}]"
        if register:
            bscratch[f"{s.name}_buf"] = str(size(s))
        return f"{s.name}_buf[b, {unit(s)}]"

    backward = step.finish(outside, home_backward, scalar)
    backward_inputs = tuple(sequence(v) for v in cell.inputs if v in read)
    written = tuple(d for _, d, elementwise in input_grads if elementwise)

    forward_args = (tuple(b[0] for b in x_buffers) + (("bias",) if plan.biases else ())
                    + tuple(f"{p.matrix}_T" for p in plan.products)
                    + tuple(f"param_{v}" for v in cell.vectors) + forward_inputs
                    + tuple(sequence(s) for s in cell.states)
                    + tuple(sequence(n) for n in plan.kept)
                    + (("Z_seq",) if keep_Z else ()) + (("A_seq",) if plan.activates else ())
                    + tuple(sorted(scratch)))
    backward_args = (("dy_seq",) + tuple(p.matrix for p in plan.products)
                     + tuple(f"param_{v}" for v in cell.vectors)
                     + tuple(f"grad_{v}" for v in cell.vectors) + backward_inputs + written
                     + tuple(sequence(s) for s in cell.states)
                     + tuple(sequence(n) for n in plan.kept)
                     + (("Z_seq",) if keep_Z else ())
                     + (("A_seq",) if "A_seq" in plan.cache else ())
                     + ("dZ_seq",) + tuple(n for c in carries for n in c[1:])
                     + tuple(sorted(bscratch)))
    def in_block(name):  # a sum over the samples (grad_p_f): one per block, added up after
        return f"{name}[k]" if name.startswith("grad_") else name

    functions = tuple(f for f in ("exp", "log", "log1p") if f in code.called)
    return Loops(forward, backward, forward_args, backward_args, tuple(sorted(scratch.items())),
                 tuple(sorted(bscratch.items())), carries, x_buffers, functions,
                 cell.size_names if plan.sized else (), tuple(input_grads),
                 tuple(map(in_block, forward_args)), tuple(map(in_block, backward_args)))


def width_of(expr, cell, per_sample):
    """The units of a vector expression (the size of the first vector it reads)."""
    sizes = [cell.size(s) for s in sorted(expr.free_symbols, key=lambda s: s.name)
             if s.name not in per_sample and cell.size(s) != 1
             and s not in {units_of(n) for n in cell.size_names}]
    return _size(_size_expr(sizes[0])) if sizes else "H"


__all__ = ["Gemm", "Loop", "Loops", "loops"]
