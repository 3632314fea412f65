"""The model zoo: names -> builders, filled in one readable place.

Each zoo module exposes ``MODELS`` (name -> builder) and ``REFERENCE`` (name -> published
params / MACs with their source). Modules are imported on first use, so ``import
perfmodel`` stays fast.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from perfmodel.errors import SpecError, UnknownNameError, did_you_mean
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import ModelShape

__all__ = ["ZOO_MODULES", "models", "references", "load_model", "canonical_name"]

ZOO_MODULES = (
    "perfmodel.zoo.cnn",
    "perfmodel.zoo.resnet",
    "perfmodel.zoo.vision_transformer",
    "perfmodel.zoo.mobile",
    "perfmodel.zoo.efficientnet",
    "perfmodel.zoo.reparam",
    "perfmodel.zoo.rnn",
    "perfmodel.zoo.transformer",
    "perfmodel.zoo.regnet",
    "perfmodel.zoo.mnasnet",
    "perfmodel.zoo.swin",
    "perfmodel.zoo.deit",
    "perfmodel.zoo.mixer",
    "perfmodel.zoo.xception",
)


@functools.lru_cache(maxsize=1)
def _modules() -> tuple[Any, ...]:
    return tuple(importlib.import_module(m) for m in ZOO_MODULES)


def models() -> dict[str, Callable[..., ModelGraph]]:
    """Every zoo model name -> its builder."""
    out: dict[str, Callable[..., ModelGraph]] = {}
    for m in _modules():
        out.update(m.MODELS)
    return out


def references() -> dict[str, Mapping[str, Any]]:
    """Published params / MACs (and their source) per zoo model."""
    out: dict[str, Mapping[str, Any]] = {}
    for m in _modules():
        out.update(m.REFERENCE)
    return out


def canonical_name(name: str) -> str:
    """Zoo names are lower-case; '-' and '_' are interchangeable (llama-2-7b, resnet50)."""
    table = models()
    key = name.strip().lower()
    for candidate in (key, key.replace("_", "-"), key.replace("-", "_")):
        if candidate in table:
            return candidate
    raise UnknownNameError(f"unknown model {name!r}",
                           did_you_mean(key, table) + " (list them: perfmodel models)")


def load_model(model: str | Path | ModelShape, **options: Any) -> ModelGraph:
    """A zoo model by name, a model file, or a transformer's shape record. ``options`` go to
    the builder (e.g. num_classes; ``fused_attention`` for transformers; ``name`` and
    ``meta`` for a shape; ``batch`` / ``seq`` for an ONNX file's dynamic dimensions).

    What is understood (``MODEL_SOURCES``, first match wins): a Hugging Face model folder or
    ``config.json``; an ``.onnx`` file (``pip install ".[onnx]"``); a layer-list or
    transformer YAML; ``pkg.module:factory``, a Python factory returning a ``torch.nn.Module``
    traced with torch.fx (``pip install ".[torch]"``); else a zoo name.

    This is where names and files become graphs: the models below it (memory, parallel,
    validate) take graphs, never names.

    >>> load_model("resnet50").params
    25557032
    """
    if isinstance(model, ModelShape):
        from perfmodel.zoo.transformer import build_transformer
        return build_transformer(model, **options)
    key = str(model)
    for matches, load in MODEL_SOURCES:
        if matches(key):
            return load(key, **options)
    builder = models()[canonical_name(key)]
    try:
        return builder(**options)
    except TypeError as exc:
        raise UnknownNameError(f"model {key!r} does not take these options: {exc}",
                               "check the builder's keyword arguments") from None


def _hf(key: str, **options: Any) -> ModelGraph:
    from perfmodel.importers.hf_config import load_hf_config
    from perfmodel.zoo.transformer import build_transformer
    path = Path(key)
    if path.is_dir() and not (path / "config.json").is_file():
        raise SpecError(f"{path}: a folder with no config.json",
                        "give a Hugging Face model folder (it holds config.json), a model "
                        "file (.json, .onnx, .yaml) or a zoo name (perfmodel models)")
    shape, meta = load_hf_config(path)
    return build_transformer(shape, meta["name"], meta=meta, **options)


def _onnx(key: str, **options: Any) -> ModelGraph:
    from perfmodel.importers.onnx_model import load_onnx
    return load_onnx(key, **{k: v for k, v in options.items() if k in TRACE_OPTIONS})


def _factory(key: str, **options: Any) -> ModelGraph:
    from perfmodel.importers.torch_fx import from_factory
    return from_factory(key, **{k: v for k, v in options.items() if k in TRACE_OPTIONS})


TRACE_OPTIONS = ("batch", "seq")  # what an ONNX file's or a torch factory's inputs take


def trace_options(model: str, batch: int | None, seq: int | None) -> dict[str, Any]:
    """The ``load_model`` options a traced model needs: an ONNX file's dynamic dimensions
    and a torch factory's example inputs are fixed when it is loaded, so the batch and
    sequence a command prices go in then (``{}`` for zoo names and config files, whose
    graphs take them at ``build_workload``)."""
    if not (model.lower().endswith(".onnx") or _is_factory(model)):
        return {}
    return {k: v for k, v in (("batch", batch), ("seq", seq)) if v is not None}


def _is_factory(key: str) -> bool:
    """``pkg.module:factory`` (a dotted module, one colon, an identifier), not a path."""
    module, sep, attr = key.partition(":")
    return bool(sep) and attr.isidentifier() and all(
        p.isidentifier() for p in module.split(".")) and not Path(key).exists()


# (does this key name such a source, how to load it), in order
MODEL_SOURCES: tuple[tuple[Callable[[str], bool], Callable[..., ModelGraph]], ...] = (
    (lambda k: Path(k).is_dir() or k.endswith(".json"), _hf),
    (lambda k: k.lower().endswith(".onnx"), _onnx),
    (lambda k: k.endswith((".yaml", ".yml")), lambda k, **o: _load_yaml_model(Path(k), **o)),
    (_is_factory, _factory),
)


def _load_yaml_model(path: Path, **options: Any) -> ModelGraph:
    from perfmodel.files import read_yaml
    from perfmodel.zoo.sequential import build_sequential, is_sequential
    d = read_yaml(path)
    if is_sequential(d):
        return build_sequential(d, str(path))
    if isinstance(d, Mapping) and "hidden_size" in d:
        from perfmodel.zoo.transformer import build_transformer, read_transformer_config
        shape, meta = read_transformer_config(d, where=str(path))
        return build_transformer(shape, meta["name"], meta=meta, **options)
    raise SpecError(f"{path}: not a model file",
                    "give a layer list (input: + layers:) or a transformer config "
                    "(hidden_size:, num_hidden_layers:, ...); see workloads/README.md")
