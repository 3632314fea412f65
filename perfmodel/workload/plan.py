"""ParallelPlan: how a run is split over devices — the one plan record (the "how").

The memory model, the training-step model and (next) inference and serving read this record;
nothing else describes a parallel split. Sizes, Megatron-LM / DeepSpeed / FSDP vocabulary:

* ``data_parallel`` d, ``tensor_parallel`` t, ``pipeline_parallel`` p and
  ``context_parallel`` c multiply to the devices: d x t x p x c. ``expert_parallel`` e
  spreads a mixture-of-experts layer's experts over e devices carved out of the data- and
  context-parallel ranks (Megatron-Core ``parallel_state.initialize_model_parallel``: the
  world size must be a multiple of expert-tensor x expert x pipeline sizes, the expert
  tensor size defaulting to t, so e must divide d x c), and must divide the routed experts.
* ``sequence_parallel``: layer norms and dropouts split along the sequence over the t ranks
  (Korthikanti et al. 2023); needs t > 1.
* ``zero_stage``: 0 none, 1 optimizer states, 2 + gradients, 3 + weights (= FSDP full
  sharding; Rajbhandari et al. 2020). ``recompute``: RECOMPUTE.
* The batch is the Job's (``Job.batch``: sequences per step over all devices). Each data-
  parallel replica takes batch / d in micro-batches of ``micro_batch`` (None: one micro-
  batch of batch / d), so a pipeline runs m = batch / (d x micro_batch) per step
  (``micro_batches``). ``schedule`` and ``virtual_stages`` (model chunks per device, the
  interleaved schedule only) order them.
* ``context_kind``: how context parallelism splits attention — ``ring`` (ring attention:
  KV chunks passed around the c ranks, overlapped with attention; Liu et al. 2023,
  Megatron-Core / Transformer Engine CP) or ``ulysses`` (all-to-all of Q, K, V and the
  output over the c ranks, heads split; Jacobs et al. 2023, DeepSpeed-Ulysses).
* Mixture of experts: ``moe_capacity_factor`` (None: no token dropping; else each expert
  takes at most factor x tokens x top-k / experts, Fedus et al. 2021), ``moe_imbalance``
  (the busiest expert-parallel rank's tokens over the average, >= 1) and
  ``moe_node_limit`` (DeepSeek-V3's node-limited routing: each token's experts span at
  most this many nodes; None: unlimited).
* ``shard_group``: with ZeRO 3, shard weights, gradients and optimizer states over groups
  of this many data-parallel ranks and replicate across groups (HSDP, PyTorch FSDP
  ``HYBRID_SHARD`` / FSDP2 2-D device mesh; None: shard over all data-parallel ranks).
* ``quantized_all_gather``: ZeRO 3 / FSDP gathers the weights already cast to the job's
  low-precision GEMM format (torchtitan ``enable_fsdp_float8_all_gather``; Transformer
  Engine's quantized all-gather), so the gather moves 1-byte (fp8) or smaller weights.
* What a layer saves for its backward (perfmodel.analytic.memory.layer_activation_bytes):
  ``hidden_dropout`` (dropout after attention and after the MLP, whose 1-byte masks are
  saved; Korthikanti et al. 2023 count them; models trained without it, e.g. NeMo's
  ``Llama3Config(hidden_dropout=0.0)``, save none: PyTorch's dropout returns its input at
  p = 0) and ``fused_glu`` (a gated MLP whose activation is one fused function that saves
  only its input, Megatron-Core ``fused_bias_swiglu`` with ``bias_activation_fusion``:
  the gate/up output and the product, 6 ffn instead of 8 ffn bytes per h).
* ``embedding_as_layers``: the pipeline split counts the embedding and the loss as one
  layer each (Megatron-Core ``account_for_embedding_in_pipeline_split`` and ``account_for_
  loss_in_pipeline_split``, as NeMo's Llama 3.1 405B recipe sets them): L + 2 slots over
  the p x v chunks, the first stage's first slot the embedding, the last's last the loss
  and LM head (``pipeline_slots``).
* Training-framework choices that change cost: ``overlap_grad_reduce`` (bucketed data-
  parallel reduction under the backward), ``attention_dropout`` (a dropout kernel on the
  attention probabilities, priced with unfused attention kernels) and ``reduce_dtype``
  (width of the gradient reduction; None: the training dtype). Which attention kernels run
  is the model's, not the plan's: a graph built with fused attention (the zoo's default,
  ``ModelGraph.attention_kernels == "flash"``) or without (``load_model(name,
  fused_attention=False)``: Megatron-LM 2022's baddbmm / softmax / bmm over all s^2
  scores).

Intrinsic rules are checked when a plan is made; rules that need the model, the batch or the
system are checked by :func:`check_plan`, once, by every model that takes a plan.

>>> plan = ParallelPlan(data_parallel=8, tensor_parallel=8, pipeline_parallel=16,
...                     micro_batch=1, schedule="interleaved", virtual_stages=2)
>>> plan.devices, plan.micro_batches(1536)
(1024, 192)
>>> ParallelPlan(tensor_parallel=1, sequence_parallel=True)
Traceback (most recent call last):
...
perfmodel.errors.PlanError: sequence parallelism splits along the tensor-parallel group \
(hint: use --tp 2 or more, or drop --sequence-parallel)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from perfmodel.errors import PlanError, UnknownNameError, did_you_mean
from perfmodel.graph.shape import ModelShape
from perfmodel.units import dtype as lookup_dtype
from perfmodel.workload.job import LIMITS, check_positive, record_from_dict

__all__ = ["ParallelPlan", "check_plan", "plan_for_devices", "SCHEDULES", "RECOMPUTE",
           "ZERO_STAGES", "SELECTIVE_LAYER_EVERY", "CONTEXT_KINDS", "check_dualpipe",
           "pipeline_slots"]

SCHEDULES = ("1f1b", "gpipe", "interleaved", "zb-h1", "zb-v", "dualpipe", "pipedream")
# none; selective and full (Korthikanti et al. 2023); torchtitan's selective_op (op-level
# SAC) and selective_layer (every n-th block fully checkpointed)
RECOMPUTE = ("none", "selective", "full", "selective_op", "selective_layer")
# torchtitan's "selective layer" AC checkpoints every n-th transformer block; n is its
# --activation_checkpoint.selective_ac_option, default "2" (torchtitan/config_manager.py,
# "2 = checkpoint every other layer"; parallelisms/parallelize_llama.py, apply_ac).
SELECTIVE_LAYER_EVERY = 2
ZERO_STAGES = (0, 1, 2, 3)
CONTEXT_KINDS = ("ring", "ulysses")
# size field -> the command-line flag that sets it (hints name what a user types)
_SIZES = {"data_parallel": "--dp", "tensor_parallel": "--tp", "pipeline_parallel": "--pp",
          "expert_parallel": "--ep", "context_parallel": "--cp", "virtual_stages": "--virtual"}


@dataclass(frozen=True, kw_only=True)
class ParallelPlan:
    """How a run is split over devices (see the module docstring for every field)."""

    data_parallel: int = 1
    tensor_parallel: int = 1
    pipeline_parallel: int = 1
    expert_parallel: int = 1
    context_parallel: int = 1
    sequence_parallel: bool = False
    zero_stage: int = 0
    recompute: str = "none"
    micro_batch: int | None = None
    virtual_stages: int = 1
    schedule: str = "1f1b"
    overlap_grad_reduce: bool = True
    attention_dropout: bool = False
    reduce_dtype: str | None = None
    context_kind: str = "ring"
    moe_capacity_factor: float | None = None
    moe_imbalance: float = 1.0
    moe_node_limit: int | None = None
    shard_group: int | None = None
    quantized_all_gather: bool = False
    hidden_dropout: bool = True
    fused_glu: bool = False
    embedding_as_layers: bool = False

    def __post_init__(self) -> None:
        for name, flag in _SIZES.items():
            check_positive(name, getattr(self, name), PlanError, flag, LIMITS["parallel"])
        if self.micro_batch is not None:
            check_positive("micro_batch", self.micro_batch, PlanError, "--micro-batch")
        for name, value, choices in (("schedule", self.schedule, SCHEDULES),
                                     ("recompute", self.recompute, RECOMPUTE)):
            if value not in choices:
                raise UnknownNameError(f"unknown {name} {value!r}",
                                       did_you_mean(str(value), choices))
        if self.context_kind not in CONTEXT_KINDS:
            raise UnknownNameError(f"unknown context parallelism {self.context_kind!r}",
                                   did_you_mean(str(self.context_kind), CONTEXT_KINDS))
        _check_moe(self)
        if self.shard_group is not None:
            check_positive("shard_group", self.shard_group, PlanError, "--shard-group")
            if self.zero_stage != 3 or self.data_parallel % self.shard_group:
                raise PlanError(f"HSDP shard group {self.shard_group} needs ZeRO 3 and must "
                                f"divide data parallel {self.data_parallel}",
                                "use --fsdp with --shard-group dividing --dp")
        if self.zero_stage not in ZERO_STAGES or isinstance(self.zero_stage, bool):
            raise PlanError(f"ZeRO stage must be 0, 1, 2 or 3, got {self.zero_stage!r}",
                            "use --zero 0..3 (3 = FSDP full sharding)")
        if self.reduce_dtype is not None:
            lookup_dtype(self.reduce_dtype)  # UnknownNameError with a hint
        if self.sequence_parallel and self.tensor_parallel == 1:
            raise PlanError("sequence parallelism splits along the tensor-parallel group",
                            "use --tp 2 or more, or drop --sequence-parallel")
        if self.schedule != "interleaved" and self.virtual_stages != 1:
            raise PlanError(f"--virtual {self.virtual_stages} applies to the interleaved "
                            "schedule only", "use --schedule interleaved or --virtual 1")
        if self.expert_parallel > 1 and (self.data_parallel * self.context_parallel) \
                % self.expert_parallel:
            raise PlanError(
                f"expert parallel size {self.expert_parallel} does not divide data x context "
                f"parallel = {self.data_parallel} x {self.context_parallel} (expert ranks "
                "are carved out of them, as in Megatron-Core)",
                "choose --ep dividing dp x cp")

    @property
    def devices(self) -> int:
        """Devices in the run: data x tensor x pipeline x context parallel."""
        return (self.data_parallel * self.tensor_parallel * self.pipeline_parallel
                * self.context_parallel)

    @property
    def shard_size(self) -> int:
        """Ranks that ZeRO / FSDP shards states over: the HSDP group, else all of dp."""
        return self.shard_group or self.data_parallel

    @property
    def fsdp(self) -> bool:
        """ZeRO stage 3: weights, gradients and optimizer states sharded (FSDP full shard)."""
        return self.zero_stage == 3

    def micro_batch_of(self, batch: int) -> int:
        """Sequences per micro-batch for a run of ``batch`` sequences per step."""
        return self.micro_batch or max(batch // self.data_parallel, 1)

    def micro_batches(self, batch: int) -> int:
        """m: micro-batches per pipeline and step for a run of ``batch`` sequences."""
        return batch // (self.data_parallel * self.micro_batch_of(batch))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any) -> ParallelPlan:
        return record_from_dict(cls, d, "plan", PlanError)


def _check_moe(plan: ParallelPlan) -> None:
    cf, imb, limit = plan.moe_capacity_factor, plan.moe_imbalance, plan.moe_node_limit
    if cf is not None and (isinstance(cf, bool) or not isinstance(cf, int | float)
                           or not cf > 0 or cf > 64):
        raise PlanError(f"MoE capacity factor must be in (0, 64], got {cf!r}",
                        "use --capacity-factor 1.0 .. 2.0, or leave it unset (no dropping)")
    if isinstance(imb, bool) or not isinstance(imb, int | float) or not 1 <= imb <= 64:
        raise PlanError(f"MoE load imbalance must be in [1, 64] (busiest rank over the "
                        f"average), got {imb!r}", "use --moe-imbalance 1.0 (balanced) .. 2")
    if limit is not None:
        check_positive("moe_node_limit", limit, PlanError, "--moe-node-limit")


def plan_for_devices(devices: int, **sizes: Any) -> ParallelPlan:
    """A plan on ``devices`` devices: ``data_parallel`` defaults to what the other sizes
    leave (devices / (t p c)); their product must be the device count."""
    check_positive("gpus", devices, PlanError)
    rest = {k: v for k, v in sizes.items() if v is not None}
    probe = ParallelPlan(**{**rest, "data_parallel": 1, "expert_parallel": 1,
                            "shard_group": None})
    dp = rest.pop("data_parallel", None) or devices // probe.devices
    if dp <= 0 or dp * probe.devices != devices:
        raise PlanError(f"dp x tp x pp x cp = {dp} x {probe.tensor_parallel} x "
                        f"{probe.pipeline_parallel} x {probe.context_parallel} is not "
                        f"--gpus {devices}", "choose sizes whose product is the device count")
    return ParallelPlan(data_parallel=dp, **rest)


def check_plan(plan: ParallelPlan, *, batch: int | None = None,
               shape: ModelShape | None = None, name: str = "the model",
               devices_per_node: int | None = None) -> None:
    """The rules that need more than the plan, each one clear PlanError with its fix:
    the batch splits into whole micro-batches (and into whole pipeline rounds for the
    interleaved schedule); the model's heads, layers and experts split as asked; tensor
    parallelism tiles the nodes of the system."""
    if batch is not None:
        _check_batch(plan, batch)
    if shape is not None:
        _check_shape(plan, shape, name)
    k = devices_per_node
    if k and plan.tensor_parallel > k and plan.tensor_parallel % k:
        raise PlanError(f"tensor parallel size {plan.tensor_parallel} spans nodes of {k} "
                        "devices unevenly", f"use --tp dividing {k} or a multiple of it")


def _check_batch(plan: ParallelPlan, batch: int) -> None:
    d, mb = plan.data_parallel, plan.micro_batch_of(batch)
    if batch % (d * mb):
        raise PlanError(f"global batch {batch} is not a multiple of data-parallel x "
                        f"micro-batch = {d} x {mb}", "choose global batch = dp x micro-batch "
                                                     "x m")
    m, p = plan.micro_batches(batch), plan.pipeline_parallel
    if plan.schedule == "interleaved" and m % p:
        raise PlanError(f"interleaved 1F1B needs micro-batches ({m}) to be a multiple of the "
                        f"stages ({p})", "Megatron-LM requires m % p == 0")
    if plan.schedule == "dualpipe":
        check_dualpipe(p, m)


def pipeline_slots(plan: ParallelPlan, shape: ModelShape) -> int:
    """The layers a pipeline split divides: the model's, plus the embedding and the loss
    with ``embedding_as_layers``."""
    return shape.num_hidden_layers + (2 if plan.embedding_as_layers else 0)


def check_dualpipe(p: int, m: int) -> None:
    """DualPipe's rules (deepseek-ai/DualPipe ``DualPipe.step`` asserts them): an even
    number of stages, and an even number of micro-batches, at least 2 x stages."""
    if p % 2:
        raise PlanError(f"DualPipe needs an even number of stages, got {p} (device s is "
                        "stage s of one direction and stage p-1-s of the other)",
                        f"use --pp {p + 1} or {p - 1}, or another schedule" if p > 1 else
                        "use --pp 2 or more")
    if m % 2 or m < 2 * p:
        raise PlanError(f"DualPipe needs an even number of micro-batches, at least 2 x stages "
                        f"= {2 * p}, got {m} (half go each way)",
                        f"use {max(2 * p, m + m % 2)} micro-batches or more")


def _check_shape(plan: ParallelPlan, s: ModelShape, name: str) -> None:
    t, p, v = plan.tensor_parallel, plan.pipeline_parallel, plan.virtual_stages
    heads, kv = s.num_attention_heads, s.num_key_value_heads
    # KV heads split over the ranks, or (tp beyond them) each replicated on tp / kv ranks:
    # a whole number either way (vLLM LlamaAttention asserts tp % kv == 0 when tp > kv)
    if heads % t or (kv % t if t <= kv else t % kv):
        raise PlanError(f"tensor parallel size {t} does not divide {name}'s {heads} "
                        f"attention heads ({kv} KV heads)", "choose --tp dividing the head "
                                                            "count")
    layers = pipeline_slots(plan, s)
    if p * v > layers:
        raise PlanError(f"{p} stages x {v} chunks exceed {name}'s {layers} layers",
                        f"use --pp {layers // v} or less, or fewer --virtual chunks")
    if v > 1 and layers % (p * v):
        raise PlanError(f"{layers} layers do not split into {p} stages x {v} chunks",
                        "choose pp x virtual dividing the layer count")
    e = plan.expert_parallel
    if e > 1 and (not s.is_moe or s.num_local_experts % e):
        raise PlanError(f"expert parallel size {e} does not divide {name}'s "
                        f"{s.num_local_experts} routed experts", "choose --ep dividing the "
                                                                 "expert count, or 1")
