"""An ONNX model file -> :class:`~perfmodel.graph.model_graph.ModelGraph`.

``load_onnx(path, batch=, seq=)`` reads the file with ``onnx`` (only the weights' dims, never
their data), infers every tensor's shape and maps each node onto a perfmodel op kind
(``RULES``), so the cost rules of :mod:`perfmodel.graph.costs` price it. A weight operand
makes MatMul/Gemm a ``linear``, two activations a ``matmul``; Erf-GELU, x*sigmoid(x) and
x*hardsigmoid(x) are priced as one gelu, silu or hardswish; Gather/Slice of a weight is an
embedding lookup; resizing and padding are copies (bytes, no arithmetic); views cost
nothing. Any other node becomes an op whose kind names it (``onnx.Where``,
``onnx.com.microsoft.FusedConv``): it has no cost rule, so the workload lists it as
unsupported instead of pricing it at zero.

Parameters are the floating-point initializers (more than one element) that reach an op as
weights, each counted once however many ops read it; BatchNorm running statistics are
buffers, as in torch; Constant nodes are constants.

Dynamic dims: a graph input's dim_param (or unnamed dim) is the batch (``batch``-like names,
else axis 0) or the sequence (``seq``-like names, else axis 1). Shapes are inferred at the
requested batch and seq and once more with each one larger, so every dim that grows with
them becomes the symbol ``B`` or ``S`` (:mod:`perfmodel.graph.op`), and ``build_workload``
prices the graph at any batch and seq, as a zoo model. A dim that is no multiple of them
(S+1 after a class token) keeps the whole graph at the sizes it was loaded with
(``meta["fixed_dims"]``, and a warning).

This module reads the file, infers the shapes and walks the nodes (``load_onnx``); the
rules and patterns are in :mod:`perfmodel.importers.onnx_rules`, the values and the
converter they share in :mod:`perfmodel.importers.onnx_walk`.

onnx is imported on first use (``pip install ".[onnx]"``); the core never needs it.
"""

from __future__ import annotations

import importlib
import logging
import math
import re
from collections import Counter
from pathlib import Path
from typing import Any

from perfmodel.errors import PerfModelError, ShapeError, SpecError
from perfmodel.graph.builder import GraphBuilder
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.importers.onnx_rules import RULES, Patterns, lookup
from perfmodel.importers.onnx_walk import (
    Act,
    Const,
    Converter,
    Fixed,
    InferredShapes,
    Shapes,
    Unmapped,
    Value,
    Weight,
    attr,
    dtype,
    weight_inputs,
)

__all__ = ["load_onnx", "RULES", "INSTALL"]

log = logging.getLogger(__name__)

INSTALL = 'pip install ".[onnx]"'
BATCH_NAME = re.compile(r"batch|^(n|b|bs)$", re.IGNORECASE)
SEQ_NAME = re.compile(r"seq|len|token|time|step|position|^(s|t)$", re.IGNORECASE)
INLINE_LIMIT = 64   # float initializers at most this big stay in the shape-inference model
FOLD_LIMIT = 4096   # shape computations folded for shape inference: at most this big
FOLD_ROUNDS = 4     # infer, fold what became known, infer again
SHAPE_OPS = frozenset({"Shape", "Size"})  # outputs are constants, whatever the input
# never folded: they make big tensors from a shape (whose output shapes infer without it)
NO_FOLD = frozenset({"ConstantOfShape", "Expand", "Tile", "If", "Loop", "Scan"})


def _onnx() -> Any:
    """onnx, or one PerfModelError naming the install command."""
    try:
        return importlib.import_module("onnx")
    except ImportError:
        raise PerfModelError("reading .onnx files needs the onnx package, which is not "
                             "installed", INSTALL) from None


# --- reading and shape inference --------------------------------------------------------

def _read(onnx: Any, path: Path) -> Any:
    """The model proto without its weights' data, or one SpecError saying what is wrong."""
    hint = "give an .onnx model file (torch.onnx.export, tf2onnx, optimum-cli export onnx)"
    problem = ("no such file" if not path.exists() else "not a file" if not path.is_file()
               else "the file is empty" if path.stat().st_size == 0 else "")
    if problem:
        raise SpecError(f"{path}: {problem}", hint)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the bytes are no model
        why = str(exc).splitlines()[0] if str(exc) else "unreadable"
        raise SpecError(f"{path}: not an ONNX model ({type(exc).__name__}: {why})",
                        hint) from None
    if not model.HasField("graph") or not model.graph.node:
        raise SpecError(f"{path}: not an ONNX model (no graph nodes)", hint)
    try:  # a corrupted file can still parse, with strings that are not UTF-8
        for node in model.graph.node:
            [node.name, node.op_type, node.domain, *node.input, *node.output]  # noqa: B018
        for t in (*model.graph.input, *model.graph.output, *model.graph.initializer):
            t.name  # noqa: B018  (decoding is the check)
    except UnicodeDecodeError:
        raise SpecError(f"{path}: a malformed ONNX model (names that are not UTF-8 text)",
                        "re-export it, or check it: onnx.checker.check_model(path)") from None
    if model.functions:
        model = onnx.inliner.inline_local_functions(model)
    for i, node in enumerate(model.graph.node):
        node.name = node.name or f"{node.op_type}_{i}"
    return model


def _light(onnx: Any, model: Any, folder: Path) -> tuple[Any, list[Any]]:
    """A copy for shape inference, and its real inputs: big float initializers become typed
    inputs (their values never matter); the others stay, their external data loaded (Reshape
    targets, Resize scales). Declared shapes are dropped but for custom-domain outputs."""
    g, helper = model.graph, onnx.helper
    big = {t.name for t in g.initializer
           if dtype(onnx, t.data_type) == "float" and math.prod(t.dims) > INLINE_LIMIT}
    kept = []
    for t in g.initializer:
        if t.name not in big:
            kept.append(onnx.TensorProto())
            kept[-1].CopyFrom(t)
            if t.data_location == onnx.TensorProto.EXTERNAL:
                onnx.external_data_helper.load_external_data_for_tensor(kept[-1], str(folder))
    inputs = [i for i in g.input if i.name not in {t.name for t in g.initializer}]
    custom = {o for n in g.node if n.domain not in ("", "ai.onnx") for o in n.output}
    graph = helper.make_graph(
        list(g.node), g.name or "graph", [*inputs, *(helper.make_tensor_value_info(
            t.name, t.data_type, list(t.dims)) for t in g.initializer if t.name in big)],
        [helper.make_tensor_value_info(o.name, o.type.tensor_type.elem_type, None)
         for o in g.output], initializer=kept,
        value_info=[v for v in g.value_info if v.name in custom and all(
            d.HasField("dim_value") for d in v.type.tensor_type.shape.dim)])
    light = helper.make_model(graph, opset_imports=list(model.opset_import),
                              ir_version=max(model.ir_version, 4))
    return light, list(light.graph.input)[:len(inputs)]


def _dynamic_dims(inputs: list[Any]) -> dict[tuple[str, int], str]:
    """(input, axis) -> symbol for every dynamic dim of the real graph inputs."""
    out: dict[tuple[str, int], str] = {}
    for i in inputs:
        t = i.type.tensor_type
        if not t.HasField("shape"):
            raise ShapeError(f"input {i.name!r} has no shape",
                             "export the model with input shapes (torch.onnx.export does)")
        for axis, d in enumerate(t.shape.dim):
            if d.HasField("dim_value") and d.dim_value > 0:
                continue
            name = d.dim_param
            sym = ("B" if BATCH_NAME.search(name) else "S" if SEQ_NAME.search(name)
                   else {0: "B", 1: "S"}.get(axis))
            if sym is None:
                raise ShapeError(
                    f"input {i.name!r} dim {axis} ({name or 'unnamed'}) is dynamic, and only "
                    "batch and sequence dims can be",
                    "fix it first: onnx.tools.update_model_dims.update_inputs_outputs_dims")
            out[(i.name, axis)] = sym
    return out


def _infer(onnx: Any, light: Any, dynamic: dict[tuple[str, int], str],
           sizes: dict[str, int]) -> tuple[Shapes, dict[str, int]]:
    """Every tensor's shape and element type with the dynamic dims set to ``sizes``.

    ONNX shape inference cannot see through values computed from tensor shapes (torch's
    ``arange(seq)`` is Shape -> Gather -> Range), so those nodes are evaluated (onnx's
    reference evaluator), replaced by their values, and shapes inferred again."""
    m = onnx.ModelProto()
    m.CopyFrom(light)
    for i in m.graph.input:
        for axis, d in enumerate(i.type.tensor_type.shape.dim):
            if (i.name, axis) in dynamic:
                d.Clear()
                d.dim_value = sizes[dynamic[(i.name, axis)]]
    for _ in range(FOLD_ROUNDS):
        g = onnx.shape_inference.infer_shapes(m, check_type=False, strict_mode=True,
                                              data_prop=True).graph
        shapes: Shapes = {t.name: tuple(t.dims) for t in g.initializer}
        types = {t.name: t.data_type for t in g.initializer}
        for v in (*g.input, *g.value_info, *g.output):
            t = v.type.tensor_type
            types[v.name] = t.elem_type
            if t.HasField("shape"):
                shapes[v.name] = tuple(d.dim_value if d.HasField("dim_value") else None
                                       for d in t.shape.dim)
        if not _fold_constants(onnx, m, shapes):
            break
    return shapes, types


def _fold_constants(onnx: Any, m: Any, shapes: Shapes) -> bool:
    """Replace the nodes computed from constants and known shapes by initializers holding
    their values (none over FOLD_LIMIT elements); True if any was replaced."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    np = importlib.import_module("numpy")
    known = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    opsets = {o.domain: o.version for o in m.opset_import}
    keep, folded = [], []
    for node in m.graph.node:
        shape = shapes.get(node.input[0]) if node.input else None
        try:
            if node.op_type in SHAPE_OPS and shape is not None and None not in shape:
                dims = np.array(shape, dtype=np.int64)
                lo, hi = attr(node, "start", 0), attr(node, "end", len(dims))
                outs = [dims[lo:hi] if node.op_type == "Shape" else np.array(dims.prod())]
            elif node.op_type in NO_FOLD or node.op_type.startswith("Random") or \
                    node.domain not in ("", "ai.onnx") or any(i and i not in known
                                                              for i in node.input):
                raise Unmapped(node.op_type)
            else:
                outs = list(ReferenceEvaluator(node, opsets=opsets).run(
                    None, {i: known[i] for i in node.input if i}))
        except Exception:  # not computable here: the node stays for shape inference
            outs = []
        if not outs or any(np.asarray(o).size > FOLD_LIMIT for o in outs):
            keep.append(node)
            continue
        for name, value in zip(node.output, outs, strict=False):
            known[name] = np.asarray(value)
            folded.append(numpy_helper.from_array(known[name], name))
    if folded:
        del m.graph.node[:]
        m.graph.node.extend(keep)
        m.graph.initializer.extend(folded)
    return bool(folded)


# --- the importer -----------------------------------------------------------------------

def _sizes(dynamic: dict[tuple[str, int], str], batch: int | None, seq: int | None,
           where: str) -> dict[str, int]:
    """The value of each symbol the inputs use: B batch (default 1), S seq (required)."""
    for label, v in (("batch", batch), ("seq", seq)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
            raise ShapeError(f"{label} must be a positive integer, got {v!r}",
                             f"pass --{label} N with N >= 1")
    used = set(dynamic.values())
    if "S" in used and seq is None:
        first = min(i for (i, _), s in dynamic.items() if s == "S")
        raise ShapeError(f"{where}: input {first!r} has a dynamic sequence dimension and no "
                         "sequence length was given", "pass --seq N (load_onnx(..., seq=N))")
    return {s: v for s, v in (("B", batch or 1), ("S", seq or 1)) if s in used}


def _static_batch(inputs: list[Any], batch: int | None, where: str) -> int | None:
    """A model without a dynamic batch: its first input's leading dim, which a requested
    batch must equal (a graph of fixed batch cannot be priced at another)."""
    dims = inputs[0].type.tensor_type.shape.dim if inputs else []
    fixed = dims[0].dim_value if dims and dims[0].HasField("dim_value") else None
    if batch is not None and fixed is not None and batch != fixed:
        raise ShapeError(f"{where}: the model's batch is fixed at {fixed} (input "
                         f"{inputs[0].name!r}), and batch {batch} was asked for",
                         "export it with a dynamic batch axis (torch.onnx.export(..., "
                         "dynamic_axes={'input': {0: 'batch'}})) or ask for its batch")
    return fixed


def load_onnx(path: str | Path, *, batch: int | None = None, seq: int | None = None,
              name: str | None = None) -> ModelGraph:
    """The ModelGraph of an ONNX model file (module docstring: what maps to what).

    ``batch`` (default 1) and ``seq`` size the inputs' dynamic dims and become the graph's
    ``default_batch`` / ``default_seq``; ``seq`` is required when an input has a sequence
    dim. ``name`` defaults to the file's stem. Raises SpecError for a missing, empty or
    non-ONNX file, ShapeError for shapes that cannot be inferred.

    Examples
    --------
    >>> from perfmodel.workload.build import build_workload
    >>> g = load_onnx("resnet18.onnx")                    # doctest: +SKIP
    >>> build_workload(g, batch=8).table["macs"].sum()    # doctest: +SKIP
    14512586752.0
    """
    onnx, p = _onnx(), Path(path)
    model = _read(onnx, p)
    try:
        return _convert_model(onnx, model, p, batch, seq, name)
    except PerfModelError:
        raise
    except Exception as exc:  # a corrupted file that still parses: enums, sizes, strings
        log.debug("reading %s failed", p, exc_info=True)
        why = " ".join(str(exc).split())[:200]
        raise SpecError(f"{p}: a malformed ONNX model ({type(exc).__name__}: {why})",
                        "re-export it, or check it: onnx.checker.check_model(path) "
                        "(perfmodel -v shows where reading stopped)") from None


def _convert_model(onnx: Any, model: Any, p: Path, batch: int | None, seq: int | None,
                   name: str | None) -> ModelGraph:
    """load_onnx's work on a parsed model (see there)."""
    where = str(p)
    light, inputs = _light(onnx, model, p.parent)
    dynamic = _dynamic_dims(inputs)
    sizes = _sizes(dynamic, batch, seq, where)
    fixed = None if "B" in sizes else _static_batch(inputs, batch, where)
    try:
        base, types = _infer(onnx, light, dynamic, sizes)
    except onnx.shape_inference.InferenceError as exc:
        why = " ".join(str(exc).replace("[ShapeInferenceError] Inference error(s): ", "")
                       .split())[:300]
        raise ShapeError(f"{where}: ONNX shape inference failed: {why}", "check the model: "
                         "onnx.checker.check_model(path, full_check=True)") from None
    probes, fixed_dims = [], {}
    for sym, v in sizes.items():
        try:
            probes.append((sym, v, _infer(onnx, light, dynamic, {**sizes, sym: v + 1})[0]))
        except onnx.shape_inference.InferenceError:  # the export baked this size in
            fixed_dims[sym] = v
    meta = {"family": "onnx", "source": where, "default_batch": batch or fixed or 1,
            "is_llm": False, "producer": model.producer_name,
            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                         default=0), **({"default_seq": sizes["S"]} if "S" in sizes else {})}
    args = (onnx, model, types, name or p.stem, where)
    reason = f"its shapes infer only at {fixed_dims} (sizes the export fixed)"
    try:
        graph = _convert(*args, {**meta, **({"fixed_dims": fixed_dims} if fixed_dims else {})},
                         InferredShapes(base, probes))
    except Fixed as exc:
        reason, fixed_dims = f"tensor {exc} is no multiple of batch and seq", sizes
        graph = _convert(*args, {**meta, "fixed_dims": sizes}, InferredShapes(base, []))
    if fixed_dims:
        log.warning("%s: %s; the graph is for %s only", where, reason, fixed_dims)
    return graph


def _convert(onnx: Any, model: Any, types: dict[str, int], name: str, where: str,
             meta: dict[str, Any], shapes: InferredShapes) -> ModelGraph:
    g = model.graph
    inits = {t.name: tuple(int(d) for d in t.dims) for t in g.initializer}
    cv = Converter(onnx, GraphBuilder(name, **meta), shapes, types, inits, where)
    for t in g.initializer:
        cv.values[t.name] = (Weight((t.name,)) if dtype(onnx, t.data_type) == "float"
                             and math.prod(t.dims) > 1 else Const())
    for i in g.input:
        if i.name not in inits:
            cv.b.input(i.name, cv.dims(i.name), batch=False, role="index" if dtype(
                onnx, types.get(i.name, 1)) == "int" else "act")
            cv.values[i.name] = Act(None)
    consts = {t for t, v in cv.values.items() if isinstance(v, Const)}
    found = Patterns(g.node, consts | {o for n in g.node if n.op_type == "Constant"
                                        for o in n.output})
    for i, node in enumerate(g.node):
        cv.producers.update((o, node) for o in node.output)
        if i not in found.inner:
            _visit(cv, node, found.ends.get(i))
    graph = cv.b.build()
    unsupported = Counter(str(op.kind) for op in graph.ops if str(op.kind).startswith("onnx."))
    if unsupported:
        log.info("%s: ops with no cost rule: %s", where, dict(unsupported))
    return graph


def _visit(cv: Converter, node: Any, pattern: tuple[str, str] | None) -> None:
    """Map one node: a recognised pattern's op, a constant, a weight computed from weights,
    its rule's op, or (no rule, or the rule cannot map it) an unsupported op."""
    ins: list[Value] = [cv.values.get(n) if n else None for n in node.input]
    if pattern is not None:
        cv.emit(node, pattern[0], [(pattern[1], cv.dims(pattern[1]))], cv.dims(node.output[0]))
        return
    default = node.domain in ("", "ai.onnx")
    rule = RULES.get(node.op_type) if default else None
    if default and node.op_type in (*SHAPE_OPS, "Constant"):
        cv.set_outputs(node, Const())
    elif not any(isinstance(v, Act) for v in ins) and not (
            rule is lookup and isinstance(ins[0], Weight)):
        names = tuple(n for w in weight_inputs(ins) for n in w.names)
        cv.set_outputs(node, Weight(names) if names else Const())
    else:
        try:
            if rule is None:
                raise Unmapped(node.op_type)
            rule(cv, node, ins)
        except (Unmapped, ValueError, TypeError, IndexError) as exc:
            log.debug("%s (%s) not mapped: %s", node.name, node.op_type, exc)
            cv.unsupported(node, ins)
