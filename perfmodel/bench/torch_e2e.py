"""End-to-end model latency measured with torch: the ``--backend torch`` of ``perfmodel bench``.

For each zoo model the equivalent torch module is built with random weights (nothing is
downloaded; latency does not depend on the weight values):

- transformer configs (``workloads/*.yaml``): our config mapped back onto the Hugging Face
  ``config.json`` keys (:func:`hf_config_dict`, the inverse of ``importers.hf_config``) and
  built with ``transformers`` ``AutoModelForCausalLM`` (decoders; logits for the last token
  only, as perfmodel's graph prices them) or ``AutoModel`` (encoders: BertModel + pooler);
- LeNet-5: the PyTorch reimplementation the zoo follows (tanh, average pooling);
- every other CNN: ``torchvision.models.get_model(name, weights=None)``.

Timing follows the suite's practice (perfmodel/bench/cuda/README.md, host.py): warm-up
calls, then many timed repetitions, median and 10th / 90th percentiles. On CUDA each
repetition is bracketed by ``torch.cuda.Event`` records and the stream synchronized; on the
CPU ``time.perf_counter``. Everything runs under ``torch.inference_mode``. Language models
give two rows: ``prefill`` (``seq`` prompt tokens into an empty KV cache) and ``decode``
(one new token per sequence against a KV cache of ``seq`` tokens, ``past_key_values``; the
cache is cropped back to ``seq`` untimed before each repetition). Other models give one
``inference`` row (one forward pass).

This module sits in the bench layer, which may not import the zoo: callers pass each model
as ``(name, graph)``, the zoo's ModelGraph (for transformers its ``shape`` record and
``meta["family"]``, for CNNs ``meta["input"]``, the input shape). torch, torchvision and
transformers are optional extras, imported inside functions; a missing one is one
PerfModelError naming the ``pip install`` that fixes it.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import logging
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from perfmodel.bench.measurement import measurement_frame
from perfmodel.errors import PerfModelError, ShapeError, UnknownNameError, did_you_mean
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import ModelShape

__all__ = ["TORCH_DTYPES", "hf_config_dict", "build_torch_model", "count_params",
           "time_torch", "run_torch", "require"]

log = logging.getLogger(__name__)

TORCH_DTYPES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
INSTALL = {"torch": "pip install 'perfmodel[torch]'  (or: pip install torch)",
           "torchvision": "pip install torchvision", "transformers": "pip install transformers"}
# Timed repetitions and warm-up calls: (repeats, warmup) per device kind; --quick: (5, 1).
REPEATS = {"cuda": (50, 5), "cpu": (20, 2)}
QUICK = (5, 1)


def require(module: str) -> Any:
    """Import an optional extra, or raise one PerfModelError with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise PerfModelError(f"--backend torch needs the optional package {module!r}, "
                             "which is not installed",
                             INSTALL.get(module, f"pip install {module}")) from None
    except (RuntimeError, OSError) as exc:  # e.g. a torchvision built for another torch
        raise PerfModelError(f"the installed {module!r} fails to import: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                             f"install the {module} build that matches your torch "
                             f"({INSTALL.get(module, 'pip install ' + module)})") from None


# --- our transformer config -> Hugging Face config.json ---------------------------------

_HF_ACT = {"silu": "silu", "gelu": "gelu", "relu": "relu"}


def _llama(c: Mapping[str, Any]) -> dict[str, Any]:
    kind = ("mixtral" if c.get("num_local_experts") else
            "mistral" if c.get("sliding_window") else "llama")
    out = {"model_type": kind, "num_key_value_heads": c.get("num_key_value_heads"),
           "head_dim": c.get("head_dim"), "rms_norm_eps": 1e-5,
           "attention_bias": c.get("attention_bias", False), "mlp_bias": c.get("mlp_bias", False)}
    if kind == "mixtral":
        out.update(num_local_experts=c["num_local_experts"],
                   num_experts_per_tok=c.get("num_experts_per_tok", 2))
        out.pop("attention_bias"), out.pop("mlp_bias")
    if kind == "mistral":
        out.update(sliding_window=c["sliding_window"])
        out.pop("attention_bias"), out.pop("mlp_bias")
    return {**out, "vocab_size": c["vocab_size"], "hidden_size": c["hidden_size"],
            "intermediate_size": c["intermediate_size"],
            "num_hidden_layers": c["num_hidden_layers"],
            "num_attention_heads": c["num_attention_heads"],
            "max_position_embeddings": c["max_position_embeddings"],
            "hidden_act": _HF_ACT[c.get("activation", "silu")],
            "tie_word_embeddings": c.get("tie_word_embeddings", False)}


def _gpt2(c: Mapping[str, Any]) -> dict[str, Any]:
    return {"model_type": "gpt2", "vocab_size": c["vocab_size"], "n_embd": c["hidden_size"],
            "n_inner": c["intermediate_size"], "n_layer": c["num_hidden_layers"],
            "n_head": c["num_attention_heads"], "n_positions": c["max_position_embeddings"],
            "activation_function": "gelu_new",
            "tie_word_embeddings": c.get("tie_word_embeddings", True)}


def _bert(c: Mapping[str, Any]) -> dict[str, Any]:
    return {"model_type": "bert", "vocab_size": c["vocab_size"],
            "hidden_size": c["hidden_size"], "intermediate_size": c["intermediate_size"],
            "num_hidden_layers": c["num_hidden_layers"],
            "num_attention_heads": c["num_attention_heads"],
            "max_position_embeddings": c["max_position_embeddings"],
            "type_vocab_size": c.get("type_vocab_size", 2),
            "hidden_act": _HF_ACT[c.get("activation", "gelu")],
            "position_embedding_type": "absolute"}


# family (our config's ``family``) -> mapper onto the transformers config class's keys.
HF_MAPPERS: Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    "llama": _llama, "mistral": _llama, "mixtral": _llama,
    "gpt2": _gpt2, "gpt3": _gpt2, "bert": _bert,
}


def hf_config_dict(shape: ModelShape, family: str) -> dict[str, Any]:
    """A shape record of model ``family`` -> a Hugging Face config dict with ``model_type``;
    the inverse of ``perfmodel.importers.hf_config`` for the families it reads (GPT-3 is
    built as a GPT-2 config of its size: the same layer structure)."""
    if family not in HF_MAPPERS:
        raise UnknownNameError(f"no transformers equivalent for model family {family!r}",
                               did_you_mean(family, HF_MAPPERS))
    return HF_MAPPERS[family](shape.to_dict())


# --- building the torch module ----------------------------------------------------------

def _lenet(meta: Mapping[str, Any], torch: Any) -> Any:
    """LeNet-5 as perfmodel.zoo.cnn.lenet5 builds it (tanh, 2x2 average pooling)."""
    nn = torch.nn
    channels = _image_shape(meta)[0]
    return nn.Sequential(
        nn.Conv2d(channels, 6, 5), nn.Tanh(), nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh(),
        nn.Linear(84, 10))


def _torchvision(name: str, meta: Mapping[str, Any], torch: Any) -> Any:
    tv = require("torchvision")
    key = name.replace("-", "_")
    if key not in tv.models.list_models():
        raise UnknownNameError(f"torchvision has no model {name!r} to measure",
                               did_you_mean(key, tv.models.list_models()))
    return tv.models.get_model(key, weights=None)


def _transformer(graph: ModelGraph, torch: Any) -> Any:
    tf = require("transformers")
    shape = _shape(graph)
    cfg = tf.AutoConfig.for_model(**hf_config_dict(shape, str(graph.meta.get("family", ""))))
    if not shape.is_decoder:
        return tf.AutoModel.from_config(cfg, add_pooling_layer=shape.pooler)
    return tf.AutoModelForCausalLM.from_config(cfg)


def _shape(graph: ModelGraph) -> ModelShape:
    return graph.require_shape("building it with transformers")


def _kind(graph: ModelGraph) -> str:
    if graph.shape is not None:
        return "transformers"
    return "lenet" if graph.meta.get("family") == "lenet" else "torchvision"


def build_torch_model(name: str, graph: ModelGraph, device: str = "cpu",
                      dtype: str = "fp32") -> Any:
    """The torch module for zoo model ``name`` (random weights, eval mode) on ``device``,
    parameters in ``dtype``; built directly on the device (no host copy of a 7B model)."""
    torch = require("torch")
    kind = _kind(graph)
    meta = graph.meta
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, TORCH_DTYPES[_check_dtype(dtype)]))
    try:
        with torch.device(device):
            if kind == "transformers":
                model = _transformer(graph, torch)
            elif kind == "lenet":
                model = _lenet(meta, torch)
            else:
                model = _torchvision(name, meta, torch)
    finally:
        torch.set_default_dtype(previous)
    return model.to(device=device, dtype=getattr(torch, TORCH_DTYPES[dtype])).eval()


def count_params(model: Any) -> int:
    """Distinct parameters of a torch module (tied weights counted once)."""
    return int(sum(p.numel() for p in model.parameters()))


def _check_dtype(dtype: str) -> str:
    if dtype not in TORCH_DTYPES:
        raise UnknownNameError(f"dtype {dtype!r} is not measured by --backend torch",
                               did_you_mean(dtype, TORCH_DTYPES))
    return dtype


def _image_shape(meta: Mapping[str, Any]) -> tuple[int, ...]:
    text = str(meta.get("input", ""))
    try:
        return tuple(int(v) for v in text.split("x"))
    except ValueError:
        raise ShapeError(f"cannot read an image shape from input {text!r}",
                         "CNN graphs state their input as CxHxW") from None


# --- timing -----------------------------------------------------------------------------

def time_torch(fn: Callable[[], Any], repeats: int, warmup: int, device: str,
               before: Callable[[], Any] | None = None) -> tuple[float, float, float]:
    """(median, p10, p90) seconds of ``fn`` over ``repeats`` timed calls after ``warmup``.

    CUDA: a pair of ``torch.cuda.Event`` records around each call, synchronized before the
    elapsed time is read; CPU: ``time.perf_counter``. ``before`` runs untimed ahead of each
    call (e.g. cropping a KV cache back to its length).
    """
    torch = require("torch")
    cuda = device.startswith("cuda")
    for _ in range(warmup):
        if before is not None:
            before()
        fn()
    if cuda:
        torch.cuda.synchronize()
    times = np.empty(repeats)
    for i in range(repeats):
        if before is not None:
            before()
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(
                enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            end.synchronize()
            times[i] = start.elapsed_time(end) / 1e3  # ms -> s
        else:
            t0 = time.perf_counter()
            fn()
            times[i] = time.perf_counter() - t0
    return (float(np.median(times)), float(np.percentile(times, 10)),
            float(np.percentile(times, 90)))


# --- cases ------------------------------------------------------------------------------

Case = tuple[str, Callable[[], Any], Callable[[], Any] | None]  # phase, timed fn, before


def _cases(model: Any, graph: ModelGraph, batch: int, seq: int, device: str,
           dtype: str, torch: Any) -> list[Case]:
    """The timed calls for one model: (phase, fn, before)."""
    if _kind(graph) != "transformers":
        x = torch.randn(batch, *_image_shape(graph.meta), device=device,
                        dtype=getattr(torch, TORCH_DTYPES[dtype]))
        return [("inference", lambda: model(x), None)]
    shape = _shape(graph)
    vocab = shape.vocab_size
    ids = torch.randint(1, vocab, (batch, seq), device=device)
    if not shape.is_decoder:
        return [("inference", lambda: model(input_ids=ids), None)]
    step = torch.randint(1, vocab, (batch, 1), device=device)

    def prefill() -> Any:  # logits for the last token only, as the graph's lm_head
        return model(input_ids=ids, use_cache=True, logits_to_keep=1)

    cache = prefill().past_key_values

    def decode() -> Any:
        return model(input_ids=step, past_key_values=cache, use_cache=True, logits_to_keep=1)

    def reset() -> None:  # drop the token(s) decode appended; negative crop works in 4.x / 5.x
        extra = int(cache.get_seq_length()) - seq
        if extra > 0:
            cache.crop(-extra)

    return [("prefill", prefill, None), ("decode", decode, reset)]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _device_info(device: str, torch: Any) -> dict[str, Any]:
    if device.startswith("cuda"):
        from perfmodel.bench.runner import gpu_info
        info = gpu_info()
        return {"device": torch.cuda.get_device_name(torch.device(device)),
                "driver_version": info.get("driver_version", ""),
                "cuda_version": torch.version.cuda or "",
                "sm_clock_MHz": _number(info.get("clocks.sm", "")),
                "mem_clock_MHz": _number(info.get("clocks.mem", ""))}
    from perfmodel.bench.host import detect_host
    return {"device": detect_host().cpu_model or platform.processor()}


def _framework(kind: str) -> str:
    torch = require("torch")
    extra = {"transformers": "transformers", "torchvision": "torchvision"}.get(kind)
    parts = [f"torch {torch.__version__}"]
    if extra:
        parts.append(f"{extra} {require(extra).__version__}")
    return ", ".join(parts)


def _default_device(torch: Any) -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def run_torch(models: Sequence[tuple[str, ModelGraph]], *, batch: int = 1,
              seq: int | None = None, dtype: str | None = None, device: str | None = None,
              repeats: int | None = None, quick: bool = False) -> pd.DataFrame:
    """Measure each ``(name, graph)`` model end to end; Measurement rows (family inference,
    backend torch). ``seq`` defaults to each transformer's ``default_seq``; ``dtype`` to fp16
    on CUDA and fp32 on the CPU; ``device`` to cuda when torch sees a GPU."""
    torch = require("torch")
    device = device or _default_device(torch)
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise PerfModelError("torch sees no CUDA device",
                             "install a CUDA build of torch, or pass --torch-device cpu")
    dtype = _check_dtype(dtype or ("fp16" if device.startswith("cuda") else "fp32"))
    for label, v in (("batch", batch), ("seq", seq), ("repeats", repeats)):
        if v is not None and v <= 0:
            raise ShapeError(f"{label} must be positive, got {v}", f"pass --{label} 1 or more")
    reps, warm = QUICK if quick else REPEATS["cuda" if device.startswith("cuda") else "cpu"]
    reps = repeats or reps
    context = {**_device_info(device, torch), "backend": "torch", "family": "inference",
               "dtype": dtype, "batch": batch, "repeats": reps, "num_devices": 1,
               "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    timer = ("torch.cuda.Event around each call, synchronized" if device.startswith("cuda")
             else "time.perf_counter around each call")
    rows = []
    for name, graph in models:
        kind = _kind(graph)
        s = (seq or graph.default_seq) if kind == "transformers" else None
        log.info("building %s on %s (%s)", name, device, dtype)
        with torch.inference_mode():
            model = build_torch_model(name, graph, device, dtype)
            for phase, fn, before in _cases(model, graph, batch, s or 1, device, dtype, torch):
                med, p10, p90 = time_torch(fn, reps, warm, device, before)
                rows.append({**context, "benchmark": f"e2e_{phase}", "model": name,
                             "phase": phase, "seq": s, "framework": _framework(kind),
                             "time_s": med, "time_p10_s": p10, "time_p90_s": p90,
                             "method": f"{timer}; torch.inference_mode; {warm} warm-up, "
                                       f"median of {reps}; random weights",
                             "quote_or_note": f"{count_params(model)} parameters"})
        del model
        if device.startswith("cuda"):
            torch.cuda.empty_cache()
    return measurement_frame(rows)
