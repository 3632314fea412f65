"""Predicted vs published training runs on A100 (measurements/reference/training.csv).

Rows (copied verbatim, with their citation columns, from shared/reference/measurements/
training.csv):

* Korthikanti et al. 2022 ("Reducing activation recomputation in large transformer
  models", arXiv 2205.05198), Table 5: iteration times of 22B, 175B, 530B and 1T GPT models
  with full recomputation, and with sequence parallelism + selective recomputation, on
  A100 80GB (Selene, DGX A100), as transcribed with their tp / pp / interleaving / batch by
  Calculon's validation files (rows training-00520..00527). Model shapes from the rows;
  vocabulary 51,200 (Narayanan et al. 2021, sec. 5.1, the same Megatron-LM GPT setup).
* torchtitan docs/performance.md (rows training-00217..00224): FSDP2 on 64 A100 80GB,
  Llama 2 / 3 models of the zoo, tokens/s per GPU. The system is taken as DGX A100
  (200 Gb/s HDR per GPU): the rows do not state their network.

No per-row factor is fitted: every row is priced with the device spec's efficiency.
The Korthikanti rows run Megatron-LM's 2022 kernels: unfused attention (the model built with
``fused_attention=False``) with attention dropout (``ParallelPlan(attention_dropout=True)``;
FlashAttention reached Megatron-LM in 2023).

Names become graphs at the edge: each Case names its model (a zoo name, or a ModelShape for
the GPT shapes of the paper) and the functions here take a ``models`` resolver, e.g.
``perfmodel.load_model``, which builds it.

Layer-wise check (``validate_layer_times``): Korthikanti et al. 2022, Table 4, forward and
backward milliseconds of one layer of the 22B model (tp 8, micro-batch 4, seq 2048) for
five recompute / sequence-parallel settings, against the step model's per-layer times
(compute + exposed tensor-parallel communication).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from perfmodel.errors import SpecError
from perfmodel.files import data_dir
from perfmodel.graph.model_graph import ModelGraph
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.load import load_device
from perfmodel.hardware.spec import DeviceSpec
from perfmodel.hardware.system import load_system
from perfmodel.parallel.partition import layer_costs, stage_times
from perfmodel.parallel.step import predict_step, step_from_costs
from perfmodel.validate.holdout import _refit_model, chip_of
from perfmodel.validate.reference import load_reference
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan

__all__ = ["Case", "load_cases", "validate_training", "VALIDATION_COLUMNS", "training_coverage",
           "training_holdout", "training_summary", "mpt_shape", "MPT_SIZES",
           "KORTHIKANTI_TABLE4", "validate_layer_times", "megatron_gpt", "ModelResolver"]

# Builds a case's model: a zoo name or a shape record, with builder options
# (perfmodel.load_model is one).
ModelResolver = Callable[..., ModelGraph]

VALIDATION_COLUMNS = ("row_id", "model", "gpus", "tp", "pp", "dp", "v", "recompute", "sp",
                      "metric", "published", "predicted", "error_pct", "mfu_pred", "source")
MEGATRON_VOCAB = 51200  # Narayanan et al. 2021, sec. 5.1
SYSTEM, DEVICE = "dgx-a100", "a100-sxm4-80gb"


@dataclass(frozen=True)
class Case:
    """One published run: its model (a zoo name or a shape, with builder ``options``), job
    and plan, and what was measured."""

    row_id: str
    label: str
    model: str | ModelShape
    job: Job
    plan: ParallelPlan
    metric: str  # step_s | tokens_per_s_per_gpu | sequences_per_s (all devices)
    published: float
    source: str
    options: Mapping[str, Any] = field(default_factory=dict)
    system: str = SYSTEM
    device: str = DEVICE
    framework: str = ""

    def graph(self, models: ModelResolver) -> ModelGraph:
        return models(self.model, **self.options)


def _reference_file() -> str:
    path = data_dir("measurements") / "reference" / "training.csv"
    if not path.is_file():
        raise SpecError(f"reference file not found: {path}",
                        "reinstall perfmodel: the wheel ships measurements/reference")
    return str(path)


def megatron_gpt(hidden: int, layers: int, heads: int, seq: int) -> ModelShape:
    """A Megatron-LM GPT of the given size: GPT-2's layer structure (pre-LayerNorm with
    biases, learned positions, GELU, a plain 4h MLP, LM head tied to the embedding; the
    structure of workloads/gpt3-175b.yaml) with the 51,200-token vocabulary of Narayanan et
    al. 2021, sec. 5.1."""
    return ModelShape(
        architecture="decoder", vocab_size=MEGATRON_VOCAB, hidden_size=hidden,
        intermediate_size=4 * hidden, num_hidden_layers=layers, num_attention_heads=heads,
        num_key_value_heads=heads, head_dim=hidden // heads, max_position_embeddings=seq,
        position_embedding="learned", norm="layernorm", norm_position="pre",
        activation="gelu", mlp="plain", attention_bias=True, mlp_bias=True,
        tie_word_embeddings=True)


def _korthikanti(r: pd.Series) -> Case:
    m = re.search(r"hidden (\d+), (\d+) layers, (\d+) heads, seq (\d+)", r["model"])
    opts = dict(kv.split("=") for kv in str(r["other_parallel"]).replace(" ", "").split(","))
    if m is None:
        raise SpecError(f"{r['row_id']}: cannot read the model shape from {r['model']!r}",
                        "expected 'hidden H, L layers, A heads, seq S'")
    h, layers, a, s = (int(x) for x in m.groups())
    v = int(opts["pipeline_interleaving"])
    plan = ParallelPlan(
        data_parallel=int(r["dp"]), tensor_parallel=int(r["tp"]),
        pipeline_parallel=int(r["pp"]), micro_batch=int(r["micro_batch"]),
        schedule="interleaved" if v > 1 else "1f1b", virtual_stages=v,
        recompute="full" if opts["activation_recompute"] == "full" else "selective",
        sequence_parallel=opts["tensor_par_comm_type"] == "rs_ag", attention_dropout=True)
    job = Job(phase="train", batch=int(r["global_batch"]), seq=s, dtype="bf16")
    name = r["model"].split(" ")[0]
    return Case(r["row_id"], f"{name} {opts['activation_recompute']}",
                megatron_gpt(h, layers, a, s), job, plan, "step_s", float(r["step_time_s"]),
                "Korthikanti et al. 2022 Table 5 (via Calculon)",
                {"name": name, "fused_attention": False})


# Korthikanti et al. 2022 (arXiv 2205.05198), Table 4: (experiment, recompute, sequence
# parallel, forward ms, backward ms) of one 22B layer; backward includes the recompute
KORTHIKANTI_TABLE4 = (
    ("baseline no recompute", "none", False, 7.7, 11.9),
    ("sequence parallelism", "none", True, 7.2, 11.8),
    ("baseline with recompute", "full", False, 7.7, 19.5),
    ("selective recompute", "selective", False, 7.7, 13.2),
    ("selective + sequence", "selective", True, 7.2, 13.1),
)


def validate_layer_times(models: ModelResolver) -> pd.DataFrame:
    """Korthikanti Table 4 vs the per-layer times of the step model, 22B on DGX A100."""
    system, device = load_system(SYSTEM), load_device(DEVICE)
    case = next(c for c in load_cases() if c.row_id == "training-00520")
    p, job = case.plan, case.job
    costs = layer_costs(case.graph(models), int(job.seq or 1), job.dtype, job.optimizer,
                        p.attention_dropout)
    rows = []
    for name, recompute, sp, fwd, bwd in KORTHIKANTI_TABLE4:
        plan = replace(p, recompute=recompute, sequence_parallel=sp)
        times = stage_times(costs, device, p.tensor_parallel, p.micro_batch_of(job.batch), sp,
                            recompute)
        st = step_from_costs(costs, times, plan, job, system, device)["stage"]
        f, b = st["layer_f"] * 1e3, st["layer_b"] * 1e3
        rows.append((name, recompute, sp, fwd, f, bwd, b, fwd + bwd, f + b,
                     100.0 * (f + b - fwd - bwd) / (fwd + bwd)))
    return pd.DataFrame(rows, columns=["experiment", "recompute", "sp", "forward_ms",
                                       "forward_pred_ms", "backward_ms", "backward_pred_ms",
                                       "combined_ms", "combined_pred_ms", "error_pct"])


# torchtitan's AC modes (parallelisms/parallelize_llama.py at the performance.md commit):
# "selective layer" = every 2nd block fully checkpointed (config_manager.py default
# selective_ac_option "2"; the table does not state n), "selective op" = op-level SAC
# FSDP2 MixedPrecisionPolicy(reduce_dtype=...) from torchtitan's
# --training.mixed_precision_reduce, default "float32" (config_manager.py)
TORCHTITAN_REDUCE_DTYPE = "fp32"
TORCHTITAN_RECOMPUTE = {"no": "none", "selective layer": "selective_layer",
                        "selective op": "selective_op", "full": "full"}


def _torchtitan(r: pd.Series) -> Case:
    ac = str(r["other_parallel"]).split("activation checkpointing:")[-1].strip()
    zoo = str(r["model"]).lower().replace(" ", "-")
    mb = int(r["micro_batch"])
    gpus = int(r["num_gpus"])
    plan = ParallelPlan(data_parallel=gpus, micro_batch=mb, zero_stage=3,
                        recompute=TORCHTITAN_RECOMPUTE[ac],
                        reduce_dtype=TORCHTITAN_REDUCE_DTYPE)
    job = Job(phase="train", batch=gpus * mb, seq=int(r["seq_len"]), dtype="bf16")
    return Case(r["row_id"], f"{zoo} AC {ac}", zoo, job, plan, "tokens_per_s_per_gpu",
                float(r["throughput"]), "torchtitan performance.md")


def load_cases(scope: str = "core") -> list[Case]:
    """The validation rows as Cases (Korthikanti first, then torchtitan). ``scope="all"``
    adds every other row the step model can price (``training_coverage``): llm-foundry's
    MPT runs and DeepLearningExamples' BERT pre-training on DGX A100 / DGX-1 / DGX-2."""
    if scope not in ("core", "all"):
        raise SpecError(f"unknown scope {scope!r}", "use 'core' or 'all'")
    df = pd.read_csv(_reference_file())
    out = []
    for _, r in df.iterrows():
        fw = str(r["framework"])
        if "torchtitan" in fw:
            out.append(_torchtitan(r))
        elif "calculon" in str(r["source"]):
            out.append(_korthikanti(r))
        elif scope == "all" and _blocker(r) == "":
            out.append(_PARSERS[_family(r)](r))
    return sorted(out, key=lambda c: (c.metric, c.row_id))


def _predict(c: Case, models: ModelResolver, device: DeviceSpec | None = None
             ) -> tuple[float, float]:
    """(predicted value of the case's metric, MFU) on its system and device (or
    ``device``, a refitted spec of the same chip)."""
    pred = predict_step(c.graph(models), c.job, c.plan, load_system(c.system),
                        device or load_device(c.device))
    if c.metric == "step_s":
        return pred.step_s, pred.mfu
    if c.metric == "sequences_per_s":
        return pred.tokens_per_s / float(c.job.seq or 1), pred.mfu
    if c.metric == "samples_per_s":  # a data-parallel step without a shape counts samples
        return pred.tokens_per_s, pred.mfu
    return pred.tokens_per_s / c.plan.devices, pred.mfu


def validate_training(models: ModelResolver, cases: list[Case] | None = None) -> pd.DataFrame:
    """One row per case: published vs predicted and the signed error in percent, with the
    case's framework and device. ``models`` builds each case's model
    (``perfmodel.load_model``); ``cases`` default to ``load_cases()`` (the core rows;
    ``load_cases("all")`` for every priceable row)."""
    cases = cases if cases is not None else load_cases()
    rows = []
    for c in cases:
        value, mfu = _predict(c, models)
        p = c.plan
        rows.append((c.row_id, c.label, p.devices, p.tensor_parallel, p.pipeline_parallel,
                     p.data_parallel, p.virtual_stages, p.recompute, p.sequence_parallel,
                     c.metric,
                     c.published, value, 100.0 * (value - c.published) / c.published,
                     mfu, c.source))
    df = pd.DataFrame(rows, columns=list(VALIDATION_COLUMNS))
    by_id = {c.row_id: c for c in cases}
    return df.assign(framework=[_group(by_id[i]) for i in df["row_id"]],
                     device=[by_id[i].device for i in df["row_id"]],
                     system=[by_id[i].system for i in df["row_id"]])


def _group(c: Case) -> str:
    """The framework family a case is reported under (FRAMEWORK_GROUPS)."""
    fw = c.framework or ("Megatron-LM (Korthikanti)" if c.metric == "step_s"
                         else "torchtitan (FSDP2)")
    if c.model == "resnet50":
        return "ResNet-50 (PyTorch DDP)" if "PyTorch" in fw else "ResNet-50 (TF1 Horovod)"
    return next((g for key, g in FRAMEWORK_GROUPS if key in fw), fw)


FRAMEWORK_GROUPS = (("Korthikanti", "Megatron-LM (Korthikanti)"),
                    ("torchtitan", "torchtitan (FSDP2)"),
                    ("Foundry", "llm-foundry (FSDP)"),
                    ("TensorFlow2", "TF2 BERT (Horovod)"),
                    ("PyTorch NGC", "PyTorch BERT (DDP)"))


def training_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Median |error| (percent) and signed median per framework and device of a
    ``validate_training`` table (in sample: the kernel model's figures were fitted on A100
    and V100 rows, see ``training_holdout``)."""
    g = table.assign(abs_error=table["error_pct"].abs()).groupby(["framework", "device"])
    return g.agg(rows=("row_id", "size"), median_abs_error_pct=("abs_error", "median"),
                 median_error_pct=("error_pct", "median")).reset_index()


# ---------------------------------------------------------------------------------------
# Every published row: which the step model can price, and how each one is read
# ---------------------------------------------------------------------------------------

# llm-foundry's MPT sizes (scripts/train/yamls/pretrain/mpt-<size>.yaml @ 8c8dd48f72, the
# commit of the benchmark table): d_model, n_heads, n_layers; expansion_ratio 4, vocab
# 50368, ALiBi, no biases, flash attention (attn_impl: flash) in every one
MPT_SIZES = {"125m": (768, 12, 12), "350m": (1024, 16, 24), "760m": (1536, 12, 24),
             "1b": (2048, 16, 24), "3b": (2560, 20, 32), "7b": (4096, 32, 32),
             "13b": (5120, 40, 40), "30b": (7168, 56, 48), "70b": (8192, 64, 80)}
MPT_VOCAB = 50368
# Composer FSDP mixed-precision modes: PURE keeps params, gradient reduction and buffers in
# bf16; DEFAULT reduces gradients in fp32 (composer/distributed/mosaic_parallelism.py,
# get_mixed_precision)
MPT_REDUCE = {"PURE": "bf16", "DEFAULT": "fp32"}


def mpt_shape(size: str, seq: int) -> ModelShape:
    """An MPT of llm-foundry's benchmark table (``MPT_SIZES``): MPT-7B's structure (the zoo's
    mpt-7b: pre-LayerNorm without biases, ALiBi, GELU 4h MLP, tied LM head) at the size's
    width, heads and depth."""
    h, a, layers = MPT_SIZES[size]
    return ModelShape(
        architecture="decoder", vocab_size=MPT_VOCAB, hidden_size=h, intermediate_size=4 * h,
        num_hidden_layers=layers, num_attention_heads=a, num_key_value_heads=a,
        head_dim=h // a, max_position_embeddings=seq, position_embedding="alibi",
        norm="layernorm", norm_position="pre", activation="gelu", mlp="plain",
        attention_bias=False, mlp_bias=False, tie_word_embeddings=True, norm_bias=False)


def _family(r: pd.Series) -> str:
    fw, model = str(r["framework"]), str(r["model"])
    if "Foundry" in fw:
        return "mpt"
    if model == "BERT-Large" and fw.startswith("PyTorch NGC"):
        return "bert_pytorch"
    if model == "BERT-Large" and fw.startswith("TensorFlow2"):
        return "bert_tf2"
    if "ResNet-50" in model:
        return "resnet"
    return "other"


def _blocker(r: pd.Series) -> str:
    """Why a row cannot be priced ("" if it can): the first rule that fails."""
    fw = str(r["framework"])
    published = [r[c] for c in ("throughput", "step_time_s", "tflops_per_gpu")]
    if "torchtitan" in fw or "calculon" in str(r["source"]):
        return ""
    if all(pd.isna(v) for v in published):
        return "no published value"
    if "aggregate petaFLOP/s" in str(r["throughput_unit"]):
        return "plan not stated (aggregate PFLOP/s only)"
    if "Megatron-LM v1.0" in fw:
        return "model shape and sequence not in the row"
    if "MegaScale" in fw:
        return "plan incomplete (micro-batch, recompute, precision) and no system spec"
    fam = _family(r)
    if fam.startswith("bert") and _seq_of(str(r["quote_or_note"])) is None:
        return "sequence length not in the row (SQuAD fine-tuning)"
    return "" if fam != "other" else "unknown model"


def _seq_of(note: str) -> int | None:
    m = re.search(r"Sequence [Ll]ength=(\d+)", note)
    return int(m.group(1)) if m else None


def _pair(note: str, pattern: str, row_id: str) -> tuple[int, int]:
    m = re.search(pattern + r"\s*=\s*(\d+)\s*(?:and|,)\s*(\d+)", note)
    if m is None:
        raise SpecError(f"{row_id}: cannot read {pattern!r} from {note!r}",
                        "expected 'KEY=A and B' or 'KEY=A , B'")
    return int(m.group(1)), int(m.group(2))


def _dgx(r: pd.Series) -> tuple[str, str]:
    """(system, device spec) of a DeepLearningExamples row from its ``gpu`` heading."""
    gpu = str(r["gpu"])
    if "A100" in gpu:
        return SYSTEM, "a100-sxm4-40gb" if "40GB" in gpu else "a100-sxm4-80gb"
    if "DGX-2" in gpu:
        return "dgx-2", "v100-sxm2-32gb"
    return "dgx-1-v100", "v100-sxm2-16gb" if "16G" in gpu else "v100-sxm2-32gb"


def _precision(r: pd.Series, device: str) -> tuple[str, str, bool]:
    """(dtype, Job precision, 16-bit?) of a row's precision column: AMP fp16 / bf16 are
    mixed precision; fp32 on an A100 runs its GEMMs in TF32 (TensorFlow >= 2.4 and the
    NGC PyTorch containers enable TF32 on Ampere by default)."""
    p = str(r["precision"]).lower()
    if "fp16" in p:
        return "fp16", "mixed", True
    if "bf16" in p:
        return "bf16", "mixed", True
    return ("tf32" if device.startswith("a100") else "fp32"), "fp32", False


# DeepLearningExamples BERT (NVIDIA/DeepLearningExamples; PyTorch lines at a9e2c1d5, the
# commit of the PyTorch README's 21.11 performance tables, TF2 lines at 729963dd): unfused
# attention with dropout on the probabilities (PyTorch/LanguageModeling/BERT/modeling.py
# BertSelfAttention: torch.matmul, softmax, self.dropout(attention_probs), torch.matmul).
# Optimizer LAMB in both: PyTorch run_pretraining.py:418 FusedLAMBAMP (its own copy of apex's
# FusedLAMB kernels, lamb_amp_opt/csrc/multi_tensor_lamb.cu); TF2 optimization.py:100
# tensorflow_addons LAMB, chosen by scripts/run_pretraining_lamb_phase1.sh:100
# --optimizer_type=LAMB, priced with FusedLAMB's passes (TF's per-variable ops are not
# fewer).
BERT_OPTIONS: Mapping[str, Any] = {"fused_attention": False}
BERT_OPTIMIZER = "lamb"


def _bert(r: pd.Series, micro: int, accum: int, gpus: int, seq: int, label: str,
          overlap: bool) -> Case:
    """A BERT row's Case. ``overlap``: whether the framework's gradient all-reduce can run
    under the backward (see _bert_pytorch, _bert_tf2); the reduction runs at the width the
    gradients are all-reduced in, fp16 for the AMP rows, fp32 otherwise (both scripts)."""
    system, device = _dgx(r)
    dt, precision, half = _precision(r, device)
    plan = ParallelPlan(data_parallel=gpus, micro_batch=micro, attention_dropout=True,
                        overlap_grad_reduce=overlap, reduce_dtype="fp16" if half else "fp32")
    job = Job(phase="train", batch=gpus * micro * accum, seq=seq, dtype=dt,
              precision=precision, optimizer=BERT_OPTIMIZER)
    return Case(str(r["row_id"]), label, "bert-large", job, plan, "sequences_per_s",
                float(r["throughput"]), str(r["source"]), BERT_OPTIONS, system, device,
                str(r["framework"]))


def _bert_pytorch(r: pd.Series) -> Case:
    """PyTorch BERT README tables: 'Batch size / GPU (TF32 and FP16)=a and b' is the
    micro-batch where an 'Accumulated Batch size / GPU' is also given (DGX A100 tables),
    else the per-GPU batch of one optimizer step, which run_pretraining.py divides by the
    accumulation steps (``train_batch_size // gradient_accumulation_steps``; DGX-1).

    The gradient all-reduce is never under the backward: scripts/run_pretraining.sh:30-31
    default ``allreduce_post_accumulation`` and ``allreduce_post_accumulation_fp16`` to
    true, so run_pretraining.py:668-669 runs every micro-batch but the last under
    ``model.no_sync()``, and torch DDP (run_pretraining.py:446) is built with
    ``bucket_cap_mb=torch.cuda.get_device_properties(device).total_memory``, one bucket
    holding every gradient, whose all-reduce starts only when the last micro-batch's
    backward has produced the last gradient. With fp16 AMP ``model.half()``
    (run_pretraining.py:405-406) makes the gradients, and so the all-reduce, fp16; TF32 /
    FP32 runs all-reduce the fp32 gradients."""
    note, rid = str(r["quote_or_note"]), str(r["row_id"])
    half = _precision(r, _dgx(r)[1])[2]
    i = 1 if half else 0
    batch = _pair(note, r"(?<!Accumulated )Batch size / GPU \(\w+ and FP16\)", rid)[i]
    steps = _pair(note, r"Accumulation steps \(\w+ and FP16\)", rid)[i]
    if "Accumulated Batch size" in note:
        total = _pair(note, r"Accumulated Batch size / GPU \(\w+ and FP16\)", rid)[i]
        micro, accum = batch, max(1, round(total / batch))
    else:
        micro, accum = max(1, batch // steps), steps
    seq = _seq_of(note) or 0
    return _bert(r, micro, accum, int(r["num_gpus"]), seq,
                 f"bert-large s{seq} b{micro}x{accum} {int(r['num_gpus'])} GPU", overlap=False)


def _bert_tf2(r: pd.Series) -> Case:
    """TensorFlow2 BERT README tables: 'mixed precision, FP32|TF32=a , b' pairs of
    micro-batch, gradient accumulation and global batch; the GPUs are global / (micro x
    accumulation), which the DGX-2H multi-node rows need (their num_gpus column holds the
    node count; a DGX-2H has 16 GPUs).

    The gradient reduction (official/modeling/model_training_utils.py): with accumulation
    each micro-batch's gradients are added into fp32 accumulators (``forward``, :311) and
    ``step`` (:313-321) all-reduces them once, after the last micro-batch (:339-343 /
    :354-358), with ``hvd.allreduce(..., compression=Compression.fp16 if use_float16``
    (:316): nothing of the backward is left to hide it. Without accumulation (1 micro-
    batch) ``hvd.DistributedGradientTape`` (:272, the same compression) puts each
    gradient's all-reduce in the graph as the backward produces it, and Horovod's tensor
    fusion runs them while the rest of the backward computes (Horovod docs, "Tensor
    Fusion": "interleave communication and computation"): overlapped. AMP rows all-reduce
    fp16, FP32 / TF32 rows fp32."""
    note, rid = str(r["quote_or_note"]), str(r["row_id"])
    i = 0 if _precision(r, _dgx(r)[1])[2] else 1
    micro = _pair(note, r"Batch size / GPU: mixed precision, \w+", rid)[i]
    accum = _pair(note, r"Gradient Accumulation: mixed precision, \w+", rid)[i]
    total = _pair(note, r"Global Batch Size: mixed precision, \w+", rid)[i]
    gpus = total // (micro * accum)
    seq = _seq_of(note) or 0
    return _bert(r, micro, accum, gpus, seq, f"bert-large s{seq} b{micro}x{accum} {gpus} GPU",
                 overlap=accum == 1)


def _mpt(r: pd.Series) -> Case:
    """llm-foundry benchmark rows: FSDP FULL_SHARD (ZeRO 3), act-ckpt (full recompute),
    MP mode (gradient reduction dtype), micro-batch and grad accum, global batch."""
    rid, opts = str(r["row_id"]), str(r["other_parallel"])
    size = str(r["model"]).split("-")[-1].lower()
    mb = re.match(r"(\d+) \(grad accum (\d+)\)", str(r["micro_batch"]))
    mode = re.search(r"MP mode=(\w+)", opts)
    if mb is None or mode is None or size not in MPT_SIZES or "FULL_SHARD" not in opts:
        raise SpecError(f"{rid}: cannot read the plan of {r['model']!r}: {opts!r}, "
                        f"micro-batch {r['micro_batch']!r}", "see llm-foundry's table")
    micro, accum, gpus = int(mb.group(1)), int(mb.group(2)), int(r["num_gpus"])
    seq = int(r["seq_len"])
    recompute = "full" if "act-ckpt=True" in opts else "none"
    plan = ParallelPlan(data_parallel=gpus, micro_batch=micro, zero_stage=3,
                        recompute=recompute, reduce_dtype=MPT_REDUCE[mode.group(1)])
    job = Job(phase="train", batch=gpus * micro * accum, seq=seq, dtype="bf16",
              optimizer="adamw")
    device = "a100-sxm4-40gb" if "40gb" in str(r["gpu"]) else "a100-sxm4-80gb"
    return Case(rid, f"mpt-{size} s{seq} b{micro}x{accum} {gpus} GPU", mpt_shape(size, seq),
                job, plan, "tokens_per_s_per_gpu", float(r["throughput"]), str(r["source"]),
                {"name": f"mpt-{size}"}, SYSTEM, device, str(r["framework"]))


# DeepLearningExamples ResNet-50 v1.5 (at 729963dd): PyTorch/Classification/ConvNets/
# resnet50v1.5/README.md line 368 "-b N, --batch-size N  mini-batch size (default: 256) per
# gpu" (the performance tables state none: the default); TensorFlow's README tables state
# "Batch Size / GPU" in the row. Both train with SGD and momentum (README "Optimizer: SGD
# with momentum"), data parallel (PyTorch DDP; Horovod), one optimizer step per batch.
RESNET_DEFAULT_BATCH = 256


def _resnet(r: pd.Series) -> Case:
    """A ResNet-50 row's Case: aggregate images/s on 1, 8 or 16 GPUs of a DGX, priced as a
    data-parallel step of the whole training workload (perfmodel.parallel.ddp)."""
    system, device = _dgx(r)
    dt, precision, half = _precision(r, device)
    note = str(r["quote_or_note"])
    m = re.search(r"Batch Size / GPU=(\d+)(?: \(FP32\) / (\d+) \(AMP\))?", note)
    micro = RESNET_DEFAULT_BATCH if m is None else int(m.group(2) if half and m.group(2)
                                                       else m.group(1))
    gpus = int(r["num_gpus"])
    plan = ParallelPlan(data_parallel=gpus, micro_batch=micro,
                        reduce_dtype="fp16" if half else "fp32")
    job = Job(phase="train", batch=gpus * micro, dtype=dt, precision=precision,
              optimizer="sgd_momentum")
    return Case(str(r["row_id"]), f"resnet50 b{micro} {gpus} GPU {dt}", "resnet50", job,
                plan, "samples_per_s", float(r["throughput"]), str(r["source"]), {},
                system, device, str(r["framework"]))


_PARSERS: dict[str, Callable[[pd.Series], Case]] = {
    "mpt": _mpt, "bert_pytorch": _bert_pytorch, "bert_tf2": _bert_tf2, "resnet": _resnet}


def training_coverage(detail: bool = False) -> pd.DataFrame:
    """Which published training rows (measurements/reference/training.csv) the step model
    prices: per framework family the rows priced and, for the rest, the blocker and its
    count (``detail=True``: one line per row with its blocker, "" when priced)."""
    df = pd.read_csv(_reference_file())
    rows = pd.DataFrame({"row_id": df["row_id"], "framework": df["framework"],
                         "model": df["model"], "blocker": df.apply(_blocker, axis=1)})
    if detail:
        return rows
    rows["priced"] = rows["blocker"] == ""
    rows["status"] = rows["blocker"].where(~rows["priced"], "priced")
    rows["family"] = [f"{fw.split(' [')[0]} ResNet-50" if "ResNet" in m else
                      next((g for key, g in FRAMEWORK_GROUPS if key in fw), fw)
                      for fw, m in zip(rows["framework"], rows["model"], strict=True)]
    return (rows.groupby(["status", "family"]).size().rename("rows").reset_index()
            .sort_values(["status", "rows"], ascending=[False, False], ignore_index=True))


# ---------------------------------------------------------------------------------------
# Leave one device out
# ---------------------------------------------------------------------------------------

def training_holdout(models: ModelResolver, cases: list[Case] | None = None,
                     measurements: pd.DataFrame | None = None,
                     by_framework: bool = False) -> pd.DataFrame:
    """Median |error| (percent) of the training rows of each chip (A100, V100), in sample
    (the shipped specs, whose kernel-model figures were fitted on A100 and V100 rows) and
    leave-one-device-out: the kernel model's fitted figures (issue fraction, memory level,
    kernel floor) refitted by ``holdout._refit_model`` on every OTHER chip's reference rows
    (``measurements``, default every shipped GEMM / STREAM / inference row), then the chip's
    training rows priced with that spec. ``by_framework``: one line per chip and framework
    family. Minutes: the refit prices the other chips' inference rows."""
    cases = cases if cases is not None else load_cases("all")
    ref = load_reference("all") if measurements is None else measurements
    names = sorted({c.device for c in cases} | set(ref["hw"].astype(str)))
    devices = {h: load_device(h) for h in names}
    chips = ref["hw"].astype(str).map(chip_of)
    recs = []
    for chip in sorted({chip_of(c.device) for c in cases}):
        refit = _refit_model(ref[chips != chip], devices, models)
        for c in (c for c in cases if chip_of(c.device) == chip):
            recs.append((chip, _group(c), abs(_err(c, _predict(c, models)[0])),
                         abs(_err(c, _predict(c, models, refit[c.device])[0]))))
    df = pd.DataFrame(recs, columns=["device", "framework", "in_sample", "lodo"])
    keys = ["device", "framework"] if by_framework else ["device"]
    return (df.groupby(keys, sort=True)
            .agg(rows=("lodo", "size"), median_abs_error_in_sample_pct=("in_sample", "median"),
                 median_abs_error_lodo_pct=("lodo", "median")).reset_index())


def _err(c: Case, value: float) -> float:
    return 100.0 * (value - c.published) / c.published
