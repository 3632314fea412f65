"""Every published A100 / V100 training row: coverage, plans read from the rows, errors and
the leave-one-device-out figure (perfmodel.validate.training)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from perfmodel.files import data_dir
from perfmodel.validate.training import (
    load_cases,
    training_coverage,
    training_holdout,
    validate_training,
)
from perfmodel.zoo.registry import load_model


@pytest.fixture(scope="module")
def csv():
    return pd.read_csv(data_dir("measurements") / "reference" / "training.csv")


@pytest.fixture(scope="module")
def cases():
    return {c.row_id: c for c in load_cases("all")}


def test_coverage_counts_follow_a_simple_rule(csv):
    # independent rule: a row is priceable when it is an MPT row of llm-foundry, a BERT
    # pre-training row of DeepLearningExamples (its note states the sequence length), a
    # ResNet-50 row (data parallel, perfmodel.parallel.ddp), or one of the 16 core rows
    # (torchtitan, Korthikanti via Calculon)
    note = csv["quote_or_note"].astype(str)
    mpt = csv["framework"].str.contains("Foundry")
    bert = (csv["model"] == "BERT-Large") & note.str.contains("Sequence [Ll]ength=",
                                                               regex=True)
    core = csv["framework"].str.contains("torchtitan") | csv["source"].str.contains("calculon")
    resnet = csv["model"].str.contains("ResNet-50")
    priced = int((mpt | bert | core | resnet).sum())
    cov = training_coverage()
    assert int(cov["rows"].sum()) == len(csv) == 312
    assert int(cov.loc[cov["status"] == "priced", "rows"].sum()) == priced
    blocked = cov[cov["status"] != "priced"].groupby("status")["rows"].sum()
    assert "CNN (no transformer shape record)" not in blocked
    finetune = (csv["model"] == "BERT-Large") & ~note.str.contains("Sequence [Ll]ength=")
    assert blocked["sequence length not in the row (SQuAD fine-tuning)"] == int(finetune.sum())
    assert len(cases_all := load_cases("all")) == priced
    assert len({c.row_id for c in cases_all}) == priced
    detail = training_coverage(detail=True)
    assert (detail["blocker"] == "").sum() == priced


def test_mpt_plan_is_read_from_the_row(cases):
    # training-00078: MPT-70b, 64 A100 80GB, "FSDP FULL_SHARD, act-ckpt=True, ...,
    # MP mode=PURE", micro-batch "8 (grad accum 4)", 2048 seqs of 2048 tokens
    c = cases["training-00078"]
    p, j = c.plan, c.job
    assert (p.data_parallel, p.tensor_parallel, p.pipeline_parallel) == (64, 1, 1)
    assert (p.zero_stage, p.recompute, p.micro_batch, p.reduce_dtype) == (3, "full", 8, "bf16")
    assert (j.batch, j.seq, j.dtype, j.optimizer) == (2048, 2048, "bf16", "adamw")
    assert c.device == "a100-sxm4-80gb" and c.metric == "tokens_per_s_per_gpu"
    assert c.published == 410.0
    s = c.graph(load_model).shape
    assert (s.hidden_size, s.num_attention_heads, s.num_hidden_layers) == (8192, 64, 80)


def test_pytorch_bert_plan_is_read_from_the_row(cases):
    # training-00590: DGX-1 32G, 8 GPUs, fp32, "Batch size / GPU (FP32 and FP16)=4096 and
    # 4096; Accumulation steps (FP32 and FP16)=128 and 64; Sequence length=128": 4096 is
    # the per-GPU batch of an optimizer step, so the micro-batch is 4096 / 128 = 32
    c = cases["training-00590"]
    assert (c.plan.data_parallel, c.plan.micro_batch) == (8, 32)
    assert (c.job.batch, c.job.seq, c.job.dtype, c.job.precision) == (8 * 4096, 128, "fp32",
                                                                      "fp32")
    assert (c.system, c.device, c.metric) == ("dgx-1-v100", "v100-sxm2-32gb",
                                              "sequences_per_s")
    # training-00553: DGX A100, 1 GPU, AMP: micro-batch 256, accumulated 8192 per GPU
    a = cases["training-00553"]
    assert (a.plan.micro_batch, a.job.batch, a.job.dtype) == (256, 8192, "fp16")


def test_tf2_bert_gpus_come_from_the_global_batch(cases):
    # training-00616: DGX-2H multi-node, 1 node (num_gpus column 1), mixed precision:
    # "Batch size / GPU: mixed precision, FP32=60 , 32; Gradient Accumulation: ... =64 ,
    # 128; Global Batch Size: ... =61440 , 65536": 61440 / (60 x 64) = 16 GPUs
    c = cases["training-00616"]
    assert (c.plan.data_parallel, c.plan.micro_batch) == (16, 60)
    assert (c.job.batch, c.job.seq, c.job.dtype) == (61440, 128, "fp16")
    assert (c.system, c.device) == ("dgx-2", "v100-sxm2-32gb")
    # its FP32 twin, training-00617: 65536 / (32 x 128) = 16
    assert cases["training-00617"].plan.micro_batch == 32
    assert cases["training-00617"].job.dtype == "fp32"


def test_pytorch_bert_reduces_once_after_accumulation_in_fp16(cases):
    # DeepLearningExamples PyTorch BERT @ a9e2c1d5: scripts/run_pretraining.sh:30-31 turn on
    # allreduce_post_accumulation(_fp16); run_pretraining.py:668-669 runs the accumulation
    # micro-batches under model.no_sync(); DDP's one bucket (bucket_cap_mb = the device's
    # total memory, :446) all-reduces after the last backward: never overlapped, even
    # without accumulation (training-00570, b256x1 on 256 GPUs). model.half() (:405-406)
    # makes the AMP gradients fp16; TF32 runs all-reduce fp32. Optimizer FusedLAMBAMP (:418).
    for rid, reduce in (("training-00555", "fp16"), ("training-00554", "fp32"),
                        ("training-00570", "fp16"), ("training-00590", "fp32")):
        c = cases[rid]
        assert (c.plan.overlap_grad_reduce, c.plan.reduce_dtype) == (False, reduce), rid
        assert c.job.optimizer == "lamb"


def test_tf2_bert_reduces_once_after_accumulation_unless_there_is_none(cases):
    # TensorFlow2 BERT official/modeling/model_training_utils.py @ 729963dd: with
    # accumulation, step() all-reduces the accumulated gradients once after the last
    # micro-batch (:313-321, :339-343), hvd.allreduce(compression=Compression.fp16 if
    # use_float16) (:316); training-00616 (b60x64, AMP), training-00617 (b32x128, FP32)
    for rid, reduce in (("training-00616", "fp16"), ("training-00617", "fp32")):
        c = cases[rid]
        assert (c.plan.overlap_grad_reduce, c.plan.reduce_dtype) == (False, reduce), rid
        assert c.job.optimizer == "lamb"
    # training-00646: b312x1 on 256 GPUs, no accumulation: hvd.DistributedGradientTape
    # (:272) all-reduces each gradient as the backward produces it, under the backward
    c = cases["training-00646"]
    assert c.job.batch == c.plan.micro_batch * c.plan.data_parallel == 312 * 256
    assert (c.plan.overlap_grad_reduce, c.plan.reduce_dtype) == (True, "fp16")


def test_every_priced_row_has_a_finite_error(cases):
    t = validate_training(load_model, list(cases.values()))
    assert len(t) == len(cases)
    assert all(math.isfinite(e) for e in t["error_pct"])
    assert set(t["framework"]) == {"Megatron-LM (Korthikanti)", "torchtitan (FSDP2)",
                                   "llm-foundry (FSDP)", "PyTorch BERT (DDP)",
                                   "TF2 BERT (Horovod)", "ResNet-50 (PyTorch DDP)",
                                   "ResNet-50 (TF1 Horovod)"}
    assert {d.split("-")[0] for d in t["device"]} == {"a100", "v100"}


def test_core_rows_are_unchanged():
    # the 16 rows validate_training prices by default: Korthikanti Table 5 and torchtitan
    assert len(load_cases()) == 16
    assert {c.row_id for c in load_cases()} <= {c.row_id for c in load_cases("all")}


@pytest.mark.slow
def test_training_holdout_returns_both_devices():
    one = [c for c in load_cases("all") if c.row_id in ("training-00078", "training-00616",
                                                         "training-00553")]
    h = training_holdout(load_model, one)
    assert list(h["device"]) == ["a100", "v100"]
    assert list(h["rows"]) == [2, 1]
    assert h[["median_abs_error_in_sample_pct", "median_abs_error_lodo_pct"]].notna().all().all()


def test_resnet_rows_read_their_batch_and_price_data_parallel(cases):
    # training-00544: TF1 on a DGX-1 16 GB, FP32, "Batch Size / GPU=128 (FP32) / 256 (AMP)";
    # training-00528: PyTorch, DGX A100 80 GB, TF32, no batch in the table: the script's
    # default 256 per GPU (DeepLearningExamples resnet50v1.5/README.md line 368)
    tf1, pt = cases["training-00544"], cases["training-00528"]
    assert (tf1.plan.micro_batch, tf1.job.dtype, tf1.device) == (128, "fp32", "v100-sxm2-16gb")
    assert (pt.plan.micro_batch, pt.job.dtype, pt.device) == (256, "tf32", "a100-sxm4-80gb")
    assert tf1.metric == pt.metric == "samples_per_s"
    assert tf1.job.optimizer == "sgd_momentum"
