"""Training under a low-precision GEMM recipe (perfmodel.parallel.partition, the memory
model and predict_step), worked by hand on round-number devices."""

from __future__ import annotations

import numpy as np
import pytest

from perfmodel import Job, ParallelPlan, footprint, load_device, load_model, load_system
from perfmodel.analytic.roofline import roofline
from perfmodel.errors import PlanError
from perfmodel.hardware.load import device_from_dict
from perfmodel.parallel.partition import layer_costs, stage_times
from perfmodel.parallel.step import predict_step
from tests.conftest import tiny_device_dict

S, H, FFN = 2048, 4096, 14336  # llama-3-8b: hidden 4096, MLP 14336, 32 layers
X = S * H  # elements of a block input at seq 2048, batch 1


def _device(arch: str):
    """bf16 100 FLOP/s, fp8 200 FLOP/s on the tensor unit, 10 B/s, no overheads."""
    hand = {"value": 100e-12, "source": "HAND"}
    return device_from_dict(tiny_device_dict(
        architecture=arch,
        compute={"tensor_TFLOPS": {"bf16": hand, "fp8": {"value": 200e-12, "source": "HAND"}},
                 "vector_TFLOPS": {"bf16": {"value": 10e-12, "source": "HAND"},
                                   "fp32": {"value": 10e-12, "source": "HAND"}}}),
        f"{arch}.yaml")


@pytest.fixture(scope="module")
def llama():
    return load_model("llama-3-8b")


def _row(costs, name, phase="forward"):
    rows = costs.rows
    return rows[(rows["name"] == name) & (rows["phase"] == phase)]


def test_linear_forward_at_fp8_halves_the_compute_bound_time(llama):
    dev = _device("hopper")
    name = "layers.0.self_attn.q_proj"
    bf16 = roofline(_row(layer_costs(llama, S), name), dev)
    fp8 = roofline(_row(layer_costs(llama, S, gemm_recipe="fp8-delayed"), name), dev)
    flop = 2 * S * H * H  # 68,719,476,736
    assert float(bf16["time_s"].iloc[0]) == pytest.approx(flop / 100)
    assert float(fp8["time_s"].iloc[0]) == pytest.approx(flop / 200)
    assert fp8["dtype"].iloc[0] == "fp8"
    # operands read at 1 byte: X (2048 x 4096) and W (4096 x 4096); output stays bf16
    assert float(fp8["input_bytes"].iloc[0]) == X
    assert float(fp8["weight_bytes"].iloc[0]) == H * H
    assert float(fp8["output_bytes"].iloc[0]) == 2 * X


def test_one_cast_per_input_tensor_by_hand(llama):
    costs = layer_costs(llama, S, gemm_recipe="fp8-delayed")
    cast = _row(costs, "layers.0.self_attn.q_proj.quantize_input")
    # read X in bf16 (2 B), write fp8 rowwise + its transpose (1 + 1 B)
    assert float(cast["input_bytes"].iloc[0]) == 2 * X
    assert float(cast["output_bytes"].iloc[0]) == 2 * X
    assert cast["unit"].iloc[0] == "vector" and float(cast["flops"].iloc[0]) == 0
    # K and V read the same normed input: TE's fused QKV quantizes it once
    assert _row(costs, "layers.0.self_attn.k_proj.quantize_input").empty
    grad = _row(costs, "layers.0.mlp.down_proj.quantize_grad", "backward")
    assert float(grad["input_bytes"].iloc[0]) == 2 * X  # dY of down_proj: 2048 x 4096
    weight = _row(costs, "layers.0.mlp.up_proj.quantize_weight", "optimizer")
    assert float(weight["input_bytes"].iloc[0]) == 2 * H * FFN  # once per step
    assert _row(costs, "lm_head.quantize_input").empty  # the LM head stays bf16


def test_blackwell_writes_no_transpose_for_per_tensor_fp8(llama):
    costs = layer_costs(llama, S, gemm_recipe="fp8-delayed")
    hopper = stage_times(costs, _device("hopper"), 1, 1)
    blackwell = stage_times(costs, _device("blackwell"), 1, 1)
    # forward casts: inputs of QKV, O, gate/up (X each) and down (S x FFN), 1 B each of
    # transpose, at 10 B/s
    transposes = 3 * X + S * FFN  # 54,525,952 bytes
    assert hopper.layer_f - blackwell.layer_f == pytest.approx(transposes / 10)


def test_no_recipe_leaves_the_rows_and_times_as_before(llama):
    dev = load_device("h100-sxm5-80gb")
    before = stage_times(layer_costs(llama, S), dev, 1, 1)
    after = stage_times(layer_costs(llama, S, "bf16", "adam", False, None), dev, 1, 1)
    assert before == after
    assert "transpose_share" not in layer_costs(llama, S).rows


def test_fp8_shortens_the_layer_and_its_weight_gradient_half(llama):
    dev = load_device("h100-sxm5-80gb")
    bf16 = stage_times(layer_costs(llama, S), dev, 1, 1)
    fp8 = stage_times(layer_costs(llama, S, gemm_recipe="fp8-delayed"), dev, 1, 1)
    assert fp8.layer_f < bf16.layer_f and fp8.layer_b < bf16.layer_b
    assert fp8.layer_w < bf16.layer_w
    assert fp8.layer_model_flops == bf16.layer_model_flops  # casts are no model work


def test_mxfp8_on_hopper_is_refused_naming_blackwell(llama):
    costs = layer_costs(llama, S, gemm_recipe="mxfp8")
    with pytest.raises(PlanError, match="blackwell"):
        stage_times(costs, load_device("h100-sxm5-80gb"), 1, 1)


def test_nvfp4_keeps_a_share_of_blocks_in_bf16(llama):
    rows = layer_costs(llama, S, gemm_recipe="nvfp4").rows
    layer = rows[(rows["group"] == "layer") & (rows["phase"] != "optimizer")]
    high = layer[layer["block"] == 32]  # first index 0 + 32 layers: the bf16 share
    assert set(high["dtype"][high["kind"] == "linear"]) == {"bf16"}
    assert float(high["weight"].iloc[0]) == pytest.approx(0.16)
    low = layer[(layer["block"] == 0) & (layer["kind"] == "linear")]
    assert set(low["dtype"]) == {"fp4"}


def test_weight_memory_under_fp8_delayed_by_hand(llama):
    plan = ParallelPlan()
    base = footprint(llama, plan, Job(phase="train", batch=1, seq=S, dtype="bf16"))
    job = Job(phase="train", batch=1, seq=S, dtype="bf16", gemm_recipe="fp8-delayed")
    # linear params per block: Q, O 4096^2; K, V 4096 x 1024; gate, up, down 4096 x 14336
    linear = 2 * H * H + 2 * H * 1024 + 3 * H * FFN  # 218,103,808
    for name, copies in (("h100-sxm5-80gb", 2), ("b200", 1)):  # + transpose on Hopper
        fp = footprint(llama, plan, job, device=load_device(name))
        extra = float(fp["weights"] - base["weights"])
        assert extra == 32 * linear * copies * 1.0  # 1 byte each
        assert float(fp["gradients"]) == float(base["gradients"])
        assert float(fp["optimizer"]) == float(base["optimizer"])


def test_saved_gemm_inputs_shrink_the_activations(llama):
    plan = ParallelPlan()
    base = footprint(llama, plan, Job(phase="train", batch=1, seq=S, dtype="bf16"))
    fp = footprint(llama, plan, Job(phase="train", batch=1, seq=S, dtype="bf16",
                                    gemm_recipe="fp8-delayed"))
    # QKV and MLP-up inputs and the MLP-down input go from 2 to 1 byte; flash attention
    # keeps O in bf16 and the o_proj input adds its 1-byte copy
    per_layer = -X - X - S * FFN + X
    assert float(fp["activations"] - base["activations"]) == pytest.approx(32 * per_layer)


def test_llama_3_70b_on_64_h100_trains_faster_in_fp8_with_mfu_against_the_fp8_peak():
    graph, system = load_model("llama-3-70b"), load_system("dgx-h100")
    plan = ParallelPlan(tensor_parallel=8, pipeline_parallel=4, data_parallel=2,
                        micro_batch=1, sequence_parallel=True)
    steps = {rec: predict_step(graph, Job(phase="train", batch=128, seq=4096, dtype="bf16",
                                          gemm_recipe=rec), plan, system)
             for rec in (None, "fp8-delayed")}
    bf16, fp8 = steps[None], steps["fp8-delayed"]
    assert fp8.step_s < bf16.step_s
    # the same model FLOP, over the peak of the GEMMs' dtype (H100: fp8 1979 TFLOP/s, bf16
    # 989.5): MFU scales with 1 / step time and with the peaks' ratio
    ratio = 1979 / 989.5
    assert fp8.mfu / bf16.mfu == pytest.approx(bf16.step_s / fp8.step_s / ratio)
    assert fp8.tflops_per_device / bf16.tflops_per_device == pytest.approx(
        bf16.step_s / fp8.step_s)
    assert np.isfinite(fp8.mfu) and fp8.mfu < 1
