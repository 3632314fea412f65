"""A user's own model as a YAML layer list, built with the GraphBuilder.

    name: my_net
    input: [3, 224, 224]            # one sample's shape; the batch dimension is added
    layers:
      - conv2d: {out_channels: 64, kernel: 3, padding: 1}
      - batchnorm: {}
      - relu: {}
      - maxpool: {kernel: 2}
      - flatten: {}
      - linear: {out_features: 10}

Each entry names one GraphBuilder layer method and its keyword arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from perfmodel.errors import PerfModelError, SpecError, did_you_mean
from perfmodel.graph.builder import GraphBuilder
from perfmodel.graph.model_graph import ModelGraph

__all__ = ["LAYERS", "build_sequential", "is_sequential"]

# Layer name -> GraphBuilder method taking one tensor first.
LAYERS = ("conv2d", "linear", "batchnorm", "layernorm", "rmsnorm", "groupnorm", "relu",
          "act", "softmax", "maxpool", "avgpool", "adaptive_avgpool", "flatten", "dropout",
          "channel_shuffle", "rope")
ACTIVATIONS = ("relu6", "gelu", "silu", "sigmoid", "tanh", "hardswish", "hardsigmoid")


def is_sequential(d: Any) -> bool:
    return isinstance(d, Mapping) and "layers" in d


def _layer(b: GraphBuilder, x: Any, i: int, entry: Any, path: str) -> Any:
    where = f"{path}: layers[{i}]"
    if not isinstance(entry, Mapping) or len(entry) != 1:
        raise SpecError(f"{where} must be a one-key mapping like {{conv2d: {{...}}}}",
                        "write each layer as `- name: {arguments}`")
    (name, kwargs), = entry.items()
    kwargs = dict(kwargs or {})
    if name in ACTIVATIONS:
        return b.act(x, name, **kwargs)
    if name not in LAYERS:
        raise SpecError(f"{where}: unknown layer {name!r}",
                        did_you_mean(str(name), (*LAYERS, *ACTIVATIONS)))
    method = getattr(b, name)
    allowed = set(inspect.signature(method).parameters) - {"x", "self"}
    unknown = set(kwargs) - allowed
    if unknown:
        bad = sorted(unknown)[0]
        raise SpecError(f"{where}.{name}: unknown argument {bad!r}",
                        did_you_mean(bad, allowed))
    try:
        return method(x, **kwargs)
    except PerfModelError as exc:
        raise SpecError(f"{where}.{name}: {exc.message}", exc.hint) from None
    except TypeError as exc:
        raise SpecError(f"{where}.{name}: {exc}", "check the layer's arguments") from None


def build_sequential(d: Mapping[str, Any], path: str = "<model>") -> ModelGraph:
    """Build a ModelGraph from a layer-list mapping (format in the module docstring)."""
    shape = d.get("input")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise SpecError(f"{path}: input must be a list of positive sizes, got {shape!r}",
                        "e.g. input: [3, 224, 224]")
    layers = d.get("layers")
    if not isinstance(layers, list) or not layers:
        raise SpecError(f"{path}: layers must be a non-empty list", "list at least one layer")
    name = str(d.get("name", "model"))
    b = GraphBuilder(name, family="user", source=path, input="x".join(map(str, shape)),
                     default_batch=1, is_llm=False)
    x = b.input("input", tuple(shape))
    for i, entry in enumerate(layers):
        x = _layer(b, x, i, entry, path)
    return b.build()
