"""Low-precision GEMM recipes for training, as NVIDIA Transformer Engine runs them.

A training Job's ``dtype`` (e.g. bf16) is the width of activations, weights and gradients;
its ``gemm_recipe`` says which GEMMs run narrower and how the operands are scaled: per-tensor
fp8 with delayed or current scaling (TE ``DelayedScaling``, ``Float8CurrentScaling``),
DeepSeek-V3's block-wise fp8 (``Float8BlockScaling``), MXFP8 (``MXFP8BlockScaling``), NVFP4
(``NVFP4BlockScaling``) and MXFP4 (the OCP format; TE ships no training recipe for it). The
figures are data, ``hw_specs/_training_precision.yaml``, each with its source.

What a recipe changes (priced by perfmodel.parallel.partition and perfmodel.analytic.memory):

* The linears inside the transformer blocks (attention projections, MLP, experts) run at
  the recipe's GEMM dtype: fprop at ``forward``, dgrad and wgrad at ``backward``. The LM
  head, the embedding, MoE routers, norms and attention stay in the training dtype
  (DeepSeek-V3 sec. 3.3; TE's ``NVFP4BlockScaling`` keeps ``fp8_dpa`` off).
* Each GEMM input (the activation X and the output gradient dY per micro-batch, the weight
  W once per step) is quantized by a memory-bound pass (``cast_bytes_per_element``): read
  the high-precision tensor (twice with an amax pass), write the rowwise copy and, where
  the backward needs a different one, the columnwise copy.
* Memory: the low-precision weight cache beside the training-dtype weights, and the GEMM
  inputs saved for backward in the low-precision format (TE keeps the columnwise quantized
  input, transformer_engine/pytorch/module/linear.py, "Discard row-wise data since it is
  not needed in backward pass").

>>> gemm_recipe("mxfp8").scale_bytes("activation")
0.03125
>>> cast_bytes_per_element(gemm_recipe("fp8-delayed"), "activation", 2.0, "hopper")
4.0
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from perfmodel.errors import PlanError, SpecError, UnknownNameError, did_you_mean
from perfmodel.files import data_dir, read_yaml
from perfmodel.units import dtype as lookup_dtype

__all__ = ["GemmRecipe", "GEMM_RECIPES", "PRECISION_FILE", "OPERANDS", "gemm_recipe",
           "check_gemm_recipe", "cast_bytes_per_element", "columnwise_copies",
           "all_gather_bytes_per_param", "saved_input_bytes", "high_precision_suffixes"]

PRECISION_FILE = "_training_precision.yaml"
OPERANDS = ("activation", "weight", "gradient")
COLUMNWISE = ("transpose", "separate")
_KEYS = {"te_recipe", "forward", "backward", "formats", "block", "scale_bytes_per_element",
         "per_tensor_scale_bytes", "amax_pass", "columnwise", "weight_columnwise",
         "transpose_architectures", "architectures", "high_precision_share", "source"}


class _Device(Protocol):  # what check_gemm_recipe reads of a DeviceSpec (hardware layer)
    @property
    def name(self) -> str: ...

    @property
    def architecture(self) -> str: ...


@dataclass(frozen=True)
class GemmRecipe:
    """One low-precision GEMM recipe (see hw_specs/_training_precision.yaml for each field)."""

    name: str
    te_recipe: str | None
    forward: str
    backward: str
    formats: str
    block: str
    scale_bytes_per_element: Mapping[str, float]
    per_tensor_scale_bytes: float
    amax_pass: bool
    columnwise: str
    weight_columnwise: str
    transpose_architectures: tuple[str, ...]
    architectures: tuple[str, ...]
    high_precision_share: float
    source: str

    def scale_bytes(self, operand: str) -> float:
        """Block-scale bytes per element of ``operand`` (activation | weight | gradient)."""
        return float(self.scale_bytes_per_element[operand])

    def element_bytes(self, operand: str) -> float:
        """Bytes per element of the quantized ``operand``: its dtype width plus its scales."""
        width = lookup_dtype(self.backward if operand == "gradient" else self.forward).nbytes
        return width + self.scale_bytes(operand)


def _recipe(name: str, d: Any, problems: list[str]) -> GemmRecipe | None:
    if not isinstance(d, Mapping):
        problems.append(f"recipes.{name}: a mapping of fields")
        return None
    for key in sorted(set(_KEYS) ^ set(d)):
        problems.append(f"recipes.{name}.{key}: " + ("unknown key" if key in d else "missing"))
    if problems:
        return None
    scales = {k: float(v) for k, v in d["scale_bytes_per_element"].items()}
    if set(scales) != set(OPERANDS):
        problems.append(f"recipes.{name}.scale_bytes_per_element: give {', '.join(OPERANDS)}")
    for key in ("columnwise", "weight_columnwise"):
        if d[key] not in COLUMNWISE:
            problems.append(f"recipes.{name}.{key}: one of {', '.join(COLUMNWISE)}")
    for key in ("forward", "backward"):
        try:
            lookup_dtype(d[key])
        except UnknownNameError as exc:
            problems.append(f"recipes.{name}.{key}: {exc.message}")
    return GemmRecipe(name, d["te_recipe"], d["forward"], d["backward"], str(d["formats"]),
                      str(d["block"]), scales, float(d["per_tensor_scale_bytes"]),
                      bool(d["amax_pass"]), d["columnwise"], d["weight_columnwise"],
                      tuple(d["transpose_architectures"]), tuple(d["architectures"]),
                      float(d["high_precision_share"]), str(d["source"]))


@functools.lru_cache(maxsize=2)
def _load(path: str) -> tuple[dict[str, GemmRecipe], tuple[str, ...]]:
    d = read_yaml(data_dir("hw_specs") / path)
    problems: list[str] = []
    recipes = {}
    for name, entry in (d.get("recipes") or {}).items() if isinstance(d, Mapping) else ():
        found: list[str] = []
        r = _recipe(str(name), entry, found)
        problems += found
        if r is not None:
            recipes[str(name)] = r
    if problems or not recipes:
        raise SpecError(f"{path}: " + ("; ".join(problems) or "no recipes"),
                        f"fix these keys (format: hw_specs/{PRECISION_FILE})")
    return recipes, tuple(d.get("high_precision_suffixes") or ())


def _recipes() -> dict[str, GemmRecipe]:
    return _load(PRECISION_FILE)[0]


# The names, in the shipped file's order (read once, at import: a plain module-level tuple).
GEMM_RECIPES: tuple[str, ...] = tuple(_recipes())


def high_precision_suffixes() -> tuple[str, ...]:
    """Op-name suffixes of block linears that stay in the training dtype (MoE routers)."""
    return _load(PRECISION_FILE)[1]


def gemm_recipe(name: str | GemmRecipe) -> GemmRecipe:
    """The recipe called ``name`` (UnknownNameError with a did-you-mean otherwise).

    >>> gemm_recipe("nvfp4").forward
    'fp4'
    >>> gemm_recipe("fp8")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    perfmodel.errors.UnknownNameError: unknown gemm recipe 'fp8' (hint: did you mean ...)
    """
    if isinstance(name, GemmRecipe):
        return name
    recipes = _recipes()
    if name not in recipes:
        raise UnknownNameError(f"unknown gemm recipe {name!r}",
                               did_you_mean(str(name), recipes))
    return recipes[name]


def check_gemm_recipe(recipe: str | GemmRecipe, device: _Device) -> GemmRecipe:
    """The recipe, if the device's tensor cores run it; PlanError naming the architectures
    that do otherwise (MXFP8 and NVFP4 need Blackwell)."""
    r = gemm_recipe(recipe)
    if device.architecture not in r.architectures:
        arch = device.architecture or "unknown"
        raise PlanError(
            f"gemm recipe {r.name!r} needs {', '.join(r.architectures)} tensor cores; "
            f"{device.name} is {arch}",
            "pick a device of those architectures, or a recipe for this one: " + ", ".join(
                n for n, x in _recipes().items() if device.architecture in x.architectures)
            or "train without --gemm-recipe")
    return r


def columnwise_copies(recipe: GemmRecipe, operand: str, architecture: str | None) -> int:
    """Quantized copies of ``operand`` a training step writes: 1 (rowwise) + 1 where the
    backward's columnwise operand is its own tensor: always for ``separate``; for
    ``transpose`` on the architectures that need a physical transpose (TE-PERF: Hopper;
    Blackwell reads one layout both ways). Without an architecture, the transpose counts."""
    kind = recipe.weight_columnwise if operand == "weight" else recipe.columnwise
    if kind == "separate":
        return 2
    return 2 if architecture is None or architecture in recipe.transpose_architectures else 1


def cast_bytes_per_element(recipe: str | GemmRecipe, operand: str, source_bytes: float,
                           architecture: str | None = None) -> float:
    """Bytes one quantize pass moves per element of a GEMM input: read the high-precision
    tensor (``source_bytes`` wide; twice with an amax pass), write each quantized copy
    (``columnwise_copies``) at the low-precision width plus its block scales.

    fp8-delayed from bf16 on Hopper: 2 (read) + 2 x 1 (rowwise + transpose) = 4.
    """
    r = gemm_recipe(recipe)
    reads = source_bytes * (2 if r.amax_pass else 1)
    return reads + columnwise_copies(r, operand, architecture) * r.element_bytes(operand)


def saved_input_bytes(recipe: str | GemmRecipe) -> float:
    """Bytes per element of a GEMM input saved for the backward: the columnwise quantized
    copy alone (TE linear.py drops the rowwise one after the forward GEMM)."""
    return gemm_recipe(recipe).element_bytes("activation")


def all_gather_bytes_per_param(recipe: str | GemmRecipe | None, dtype: str = "bf16") -> float:
    """Bytes per parameter an FSDP / ZeRO-3 weight all-gather moves under the recipe
    (torchtitan ``enable_fsdp_float8_all_gather``: "cast Float8Linear.weight from high
    precision to float8 before FSDP all-gather", pytorch/torchtitan docs/float8.md; TE:
    quantized all-gather for every recipe). Weights whose columnwise copy cannot be made
    from the rowwise one (1D-scaled: MXFP8, MXFP4) gather both (TE-MXFP8, "All-gather of
    columnwise tensors ... necessary"). None: the training dtype's width.

    >>> all_gather_bytes_per_param("fp8-delayed"), all_gather_bytes_per_param(None)
    (1.0, 2.0)
    """
    if recipe is None:
        return float(lookup_dtype(dtype).nbytes)
    r = gemm_recipe(recipe)
    copies = 2 if r.weight_columnwise == "separate" else 1
    return copies * r.element_bytes("weight")
