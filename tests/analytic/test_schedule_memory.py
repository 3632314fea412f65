"""Memory of the pipeline schedules' extra copies: weight stashing and DualPipe."""

import pytest

from perfmodel.analytic.memory import footprint
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan
from perfmodel.zoo.registry import load_model

JOB = Job(phase="train", batch=16, seq=4096, dtype="bf16")


@pytest.fixture(scope="module")
def per_schedule():
    g = load_model("llama-3-8b")
    return {s: footprint(g, ParallelPlan(pipeline_parallel=4, micro_batch=1, schedule=s), JOB)
            for s in ("1f1b", "pipedream", "dualpipe", "zb-h1")}


def test_weight_stashing_holds_p_versions_on_the_first_stage(per_schedule):
    # PipeDream (Narayanan et al. SOSP 2019, sec. 3.3): stage s stashes p - s weight
    # versions, p = 4 on stage 0; gradients and optimizer states are not versioned
    base, stash = per_schedule["1f1b"], per_schedule["pipedream"]
    assert float(stash["weights"]) == pytest.approx(4 * float(base["weights"]))
    assert float(stash["gradients"]) == pytest.approx(float(base["gradients"]))
    assert float(stash["optimizer"]) == pytest.approx(float(base["optimizer"]))


def test_dualpipe_doubles_parameters_and_holds_p_plus_one_micro_batches(per_schedule):
    # DeepSeek-V3 (arXiv 2412.19437) Table 2: DualPipe 2x parameters, PP + 1 activations
    # against 1F1B's PP: (4 + 1) / 4 of the activations
    base, dual = per_schedule["1f1b"], per_schedule["dualpipe"]
    for k in ("weights", "gradients", "optimizer"):
        assert float(dual[k]) == pytest.approx(2 * float(base[k]))
    assert float(dual["activations"]) == pytest.approx(5 / 4 * float(base["activations"]))


def test_zero_bubble_h1_keeps_the_1f1b_footprint(per_schedule):
    # Qi et al. 2024: ZB-H1's peak activation memory equals 1F1B's (p micro-batches)
    assert float(per_schedule["zb-h1"]["total"]) == pytest.approx(
        float(per_schedule["1f1b"]["total"]))


def test_what_a_megatron_core_llama_layer_saves():
    # Korthikanti et al. 2023 Table 2 for a Llama layer (no recompute, flash attention, t 1):
    # s b h x (10 + 4 + 4 kv + 8 ffn) with kv = 1024 / 4096 and ffn = 14336 / 4096 = 3.5:
    # 43 sbh bytes. Megatron-Core as NeMo runs Llama 3 (Llama3Config: hidden_dropout 0.0,
    # fused SwiGLU saving only its input): no dropout masks (8) and 6 ffn: 34 sbh
    from perfmodel.analytic.memory import layer_activation_bytes
    shape = load_model("llama-3-8b").shape
    sbh = 4096 * 1 * 4096
    eager = layer_activation_bytes(shape, 4096, 1, 1, False, "none", 2.0, "flash")
    mcore = layer_activation_bytes(shape, 4096, 1, 1, False, "none", 2.0, "flash",
                                   dropout_masks=False, fused_glu=True)
    assert float(eager) == pytest.approx(43 * sbh)
    assert float(mcore) == pytest.approx(34 * sbh)
    plan = ParallelPlan(micro_batch=1, hidden_dropout=False, fused_glu=True)
    job = Job(phase="train", batch=1, seq=4096, dtype="bf16")
    g = load_model("llama-3-8b")
    drop = footprint(g, ParallelPlan(micro_batch=1), job)["activations"]
    keep = footprint(g, plan, job)["activations"]
    assert float(drop - keep) == pytest.approx(32 * 9 * sbh)  # 32 layers x (43 - 34) sbh
