"""A ``torch.nn.Module`` -> :class:`~perfmodel.graph.model_graph.ModelGraph`, via torch.fx.

``from_torch(module, example_inputs)`` traces the module with ``torch.fx`` (the torch.nn
layers we price are leaves), propagates the example inputs' shapes with fake tensors
(nothing is computed) and maps every call onto a perfmodel op kind, so the cost rules of
:mod:`perfmodel.graph.costs` price it. Where symbolic tracing fails (Python control flow
on shapes or values) it falls back to ``torch.export.export`` and walks its ATen graph.

``FUNCTIONS`` (by function, method or ATen name) and ``MODULES`` (by torch.nn class) say
what maps to what: convolutions (any groups), linear, matmul/bmm/``@``, scaled-dot-product
attention (one fused ``attention`` op), ``nn.MultiheadAttention`` (in-projection,
attention, out-projection), embedding, norms, activations, pools, softmax, add/sub,
mul/div, concat, views (zero cost), copies, mean/sum (priced as average pooling) and
``nn.LSTM``/``GRU``/``RNN`` (one cell per time step, later steps tied to the first). Any
other call becomes an op whose kind names it (``torch.nn.functional.interpolate``,
``Tensor.masked_fill``, ``aten.erf.default``): it has no cost rule, so the workload lists
it as unsupported instead of pricing it at zero.

Parameters are counted once each, as ``sum(p.numel() for p in module.parameters())``: an
op reading weights already counted (a shared module called again) is ``tied``; parameters
the forward never reads (a training-only head) sit on zero-cost ``identity`` ops named
``<module>.unused_parameters``. Shapes are concrete, for the example inputs' batch
(``meta["default_batch"]``). torch is imported on first use (``pip install ".[torch]"``).

This module traces and walks (``from_torch``, ``from_factory``); the rules are in
:mod:`perfmodel.importers.torch_rules`, the values and the walker they share in
:mod:`perfmodel.importers.torch_walk`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

from perfmodel.errors import PerfModelError, ShapeError, SpecError, UnknownNameError, did_you_mean
from perfmodel.graph.builder import GraphBuilder, Tensor
from perfmodel.graph.kinds import OpKind
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.importers.torch_rules import FUNCTIONS, MODULES, function_key, map_call, module_key
from perfmodel.importers.torch_walk import Call, Const, Walker, Weight, meta_shape, params_of

__all__ = ["from_torch", "from_factory", "FUNCTIONS", "MODULES", "METHODS", "INSTALL"]

INSTALL = 'pip install ".[torch]"'
METHODS = ("auto", "fx", "export")
IMAGE = (3, 224, 224)  # a factory's example image, unless it defines example_inputs()


def _torch() -> Any:
    """torch, or one PerfModelError naming the install command."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise PerfModelError("the torch.fx importer needs torch, which is not installed",
                             INSTALL) from None


# --- tracing: torch.fx first, torch.export where fx cannot -------------------------------

def _tracer(torch: Any) -> Any:
    """An fx Tracer whose leaves are the modules we price whole, and which tags every
    node with the module it was traced in (``meta["perfmodel_scope"]``)."""

    class _Tracer(torch.fx.Tracer):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.scopes: list[str] = []

        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            return module_key(m) is not None

        def call_module(self, m: Any, forward: Any, args: Any, kwargs: Any) -> Any:
            try:
                self.scopes.append(self.path_of_module(m))
            except NameError:  # a module made inside forward: the caller's scope
                self.scopes.append(self.scopes[-1] if self.scopes else "")
            try:
                return super().call_module(m, forward, args, kwargs)
            finally:
                self.scopes.pop()

        def create_node(self, *args: Any, **kwargs: Any) -> Any:
            node = super().create_node(*args, **kwargs)
            node.meta["perfmodel_scope"] = self.scopes[-1] if self.scopes else ""
            return node

    return _Tracer


def _trace_fx(torch: Any, module: Any, inputs: tuple[Any, ...]) -> Any:
    """Symbolic trace, then shapes from the example inputs: fake tensors first (nothing
    computed), the real inputs where an op needs values."""
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.fx.passes.shape_prop import ShapeProp

    gm = torch.fx.GraphModule(module, _tracer(torch)().trace(module))
    with contextlib.redirect_stderr(io.StringIO()):  # ShapeProp prints a failing node's trace
        try:
            ShapeProp(gm, FakeTensorMode(allow_non_fake_inputs=True)).propagate(*inputs)
        except Exception:  # noqa: BLE001 - data-dependent ops: run the real inputs
            with torch.no_grad():
                ShapeProp(gm).propagate(*inputs)
    return gm


def _walk(torch: Any, graph: Any, meta: str, value: Callable[..., Any]) -> None:
    """Every node with a tensor output (``node.meta[meta]``) -> its ``value``."""
    env: dict[Any, Any] = {}
    for node in graph.nodes:
        out = meta_shape(node.meta.get(meta))
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), env.get)
        env[node] = None if out is None or node.op == "output" else value(node, args, kwargs,
                                                                           out)


def _input(w: Walker, name: str, meta: Any) -> Tensor:
    role = "act" if meta.dtype.is_floating_point or meta.dtype.is_complex else "index"
    return w.b.input(name, meta_shape(meta), batch=False, role=role)


def _walk_fx(w: Walker, torch: Any, gm: Any) -> None:
    def value(node: Any, args: Any, kwargs: Any, out: Any) -> Any:
        if node.op == "placeholder":
            return _input(w, node.name, node.meta["tensor_meta"])
        if node.op == "get_attr":
            obj = gm
            for part in node.target.split("."):
                obj = getattr(obj, part)
            return Weight((obj,), out) if isinstance(obj, torch.nn.Parameter) else Const(out)
        if node.op == "call_module":
            m, (parent, _, last) = gm.get_submodule(node.target), node.target.rpartition(".")
            return map_call(w, Call(module_key(m) or "", f"{type(m).__module__}."
                                    f"{type(m).__qualname__}", parent, last, args, kwargs, out,
                                    m, params_of([Weight((p,), ()) for p in m.parameters()])))
        name = node.target if node.op == "call_method" else getattr(node.target, "__name__",
                                                                       str(node.target))
        full = (f"Tensor.{name}" if node.op == "call_method" else
                f"{getattr(node.target, '__module__', None) or 'builtins'}.{name}")
        return map_call(w, Call(function_key(name), full, node.meta.get("perfmodel_scope", ""),
                                node.name, args, kwargs, out, None, params_of((args, kwargs))))

    _walk(torch, gm.graph, "tensor_meta", value)


def _walk_export(w: Walker, torch: Any, ep: Any, root: Any) -> None:
    params, users = dict(ep.graph_signature.inputs_to_parameters), ep.graph_signature.user_inputs

    def value(node: Any, args: Any, kwargs: Any, out: Any) -> Any:
        if node.op == "placeholder":
            return (Weight((root.get_parameter(params[node.name]),), out)
                    if node.name in params else _input(w, node.name, node.meta["val"])
                    if node.name in users else Const(out))
        if node.op != "call_function":
            return None
        packet = getattr(node.target, "overloadpacket", None)
        name = getattr(packet or node.target, "__name__", str(node.target))
        stack = list((node.meta.get("nn_module_stack") or {}).values())
        return map_call(w, Call(function_key(name), str(node.target) if packet else name,
                                stack[-1][0] if stack else "", node.name, args, kwargs, out,
                                None, params_of((args, kwargs))))

    _walk(torch, ep.graph, "val", value)


@contextlib.contextmanager
def _eval_mode(module: Any) -> Iterator[None]:
    """Trace the inference graph; every submodule's mode is put back afterwards."""
    modes = [(m, m.training) for m in module.modules()]
    module.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _why(exc: BaseException) -> str:
    """The root cause's first line (ShapeProp wraps the failing op's error)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def _trace(torch: Any, module: Any, inputs: tuple[Any, ...],
           method: str) -> tuple[Callable[[Walker], None], str]:
    """(walk, tracer) from the first tracer that takes the module, else one SpecError."""
    errors = []
    if method in ("auto", "fx"):
        try:
            gm = _trace_fx(torch, module, inputs)
            return (lambda w: _walk_fx(w, torch, gm)), "torch.fx"
        except Exception as exc:  # noqa: BLE001 - any failure: try export, then report
            errors.append(f"torch.fx: {_why(exc)}")
    if method in ("auto", "export"):
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                ep = torch.export.export(module, inputs)
            return (lambda w: _walk_export(w, torch, ep, module)), "torch.export"
        except Exception as exc:  # noqa: BLE001
            errors.append(f"torch.export: {_why(exc)}")
    raise SpecError(f"cannot trace {type(module).__name__}: " + "; ".join(errors),
                    "make forward traceable (no Python control flow on tensor values) and "
                    "check that the example inputs fit the model")


# --- the public functions ---------------------------------------------------------------

def from_torch(module: Any, example_inputs: Any, *, name: str | None = None,
               method: str = "auto") -> ModelGraph:
    """The ModelGraph of a ``torch.nn.Module`` run on ``example_inputs``.

    ``example_inputs``: a tensor or a tuple of the forward's positional arguments; only
    shapes and dtypes matter. ``method``: ``auto`` (torch.fx, else torch.export), ``fx``
    or ``export``. The module is traced in eval mode (its modes are restored); ops are
    named by module path (``layer1.0.conv1``).

    >>> import torch                                             # doctest: +SKIP
    >>> g = from_torch(torch.nn.Linear(4, 2), torch.zeros(3, 4))  # doctest: +SKIP
    >>> g.params, [str(op.kind) for op in g.ops]                 # doctest: +SKIP
    (10, ['linear'])
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise SpecError(f"from_torch takes a torch.nn.Module, not {type(module).__name__}",
                        "pass the model object (e.g. torchvision.models.resnet50())")
    if method not in METHODS:
        raise UnknownNameError(f"unknown trace method {method!r}", did_you_mean(method, METHODS))
    inputs = (example_inputs,) if isinstance(example_inputs, torch.Tensor) else tuple(
        example_inputs)
    with _eval_mode(module):
        walk, how = _trace(torch, module, inputs, method)
    shapes = [tuple(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    cls = type(module)
    w = Walker(GraphBuilder(
        name or cls.__name__, family="torch", source=f"{cls.__module__}.{cls.__qualname__}",
        tracer=how, input=", ".join("x".join(map(str, s)) for s in shapes), is_llm=False,
        default_batch=int(shapes[0][0]) if shapes and shapes[0] else 1))
    walk(w)
    owners: dict[str, list[tuple[int, ...]]] = {}  # parameters the forward never read
    for pname, p in module.named_parameters():
        if id(p) not in w.seen:
            owners.setdefault(pname.rpartition(".")[0], []).append(tuple(p.shape))
    for owner, weights in owners.items():
        w.add(OpKind.IDENTITY, [], (), owner, "unused_parameters", weights, unused=True)
    return w.b.build()


def from_factory(spec: str, *, batch: int = 1, seq: int | None = None) -> ModelGraph:
    """``pkg.module:factory``: import ``pkg.module``, call ``factory()`` for a torch module
    and trace it (:func:`from_torch`) on an example input of ``batch`` samples: the
    module's own ``example_inputs(batch, seq)`` if it has one, else ``seq`` token ids
    (int64 zeros) when ``seq`` is given, else a 3x224x224 image. The current folder is
    importable. Every failure (no such module or factory, a factory that raises or returns
    no module, a model neither tracer takes) is one PerfModelError.
    """
    module_name, sep, attr = spec.partition(":")
    if not (sep and attr.isidentifier() and all(map(str.isidentifier,
                                                    module_name.split(".")))):
        raise SpecError(f"{spec!r} is not pkg.module:factory",
                        "give the module's dotted path, a colon and the factory's name")
    for what, v in (("batch", batch), ("seq", 1 if seq is None else seq)):
        if not isinstance(v, int) or v < 1:
            raise ShapeError(f"{what} must be a positive integer, got {v!r}", f"use {what} >= 1")
    torch = _torch()
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    sys.path[:0] = [cwd] if added else []
    try:
        mod = _user(spec, f"import {module_name}", importlib.import_module, module_name,
                    hint="check the module path (the current folder and PYTHONPATH are "
                    "searched)")
        factory = getattr(mod, attr, None)
        if not callable(factory):
            names = [n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")]
            raise UnknownNameError(f"{spec}: {module_name!r} has no factory {attr!r}",
                                   did_you_mean(attr, names))
        model = _user(spec, f"{attr}()", factory)
        if not isinstance(model, torch.nn.Module):
            raise SpecError(f"{spec}: {attr}() returned {type(model).__name__}, not a "
                            "torch.nn.Module", "return the model object")
        hook = getattr(mod, "example_inputs", None)
        inputs = (_user(spec, f"example_inputs({batch}, {seq})", hook, batch, seq)
                  if callable(hook) else torch.zeros((batch, seq), dtype=torch.long)
                  if seq is not None else torch.zeros((batch, *IMAGE)))
        graph = from_torch(model, inputs, name=spec)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    meta = {**graph.meta, "factory": spec, **({"default_seq": seq} if seq else {})}
    return ModelGraph(graph.name, graph.ops, graph.edges, graph.inputs, meta, graph.shape)


def _user(spec: str, what: str, fn: Callable[..., Any], *args: Any,
          hint: str = "run it in Python to see the traceback") -> Any:
    """Run the user's code; any failure is one SpecError naming what failed."""
    try:
        return fn(*args)
    except PerfModelError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's code failed
        raise SpecError(f"{spec}: {what} failed: {_why(exc)}", hint) from None
