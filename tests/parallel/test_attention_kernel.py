"""The fused attention of a training step at the published kernels' utilization."""

import pytest

from perfmodel.hardware.load import load_device
from perfmodel.parallel.partition import layer_costs, stage_times
from perfmodel.zoo.registry import load_model


@pytest.mark.parametrize("device, peak, fwd, bwd", [
    # FlashAttention-2 on A100 (Dao 2023, sec. 1): up to 73 % forward, 63 % backward
    ("a100-sxm4-80gb", 312e12, 0.73, 0.63),
    # FlashAttention-3 on H100 SXM5 (Shah et al. 2024): 740 and 450 TFLOP/s of 989
    ("h100-sxm5-80gb", 989.5e12, 0.75, 0.455),
])
def test_flash_attention_time_is_its_flop_at_the_kernels_utilization(device, peak, fwd, bwd):
    costs = layer_costs(load_model("llama-3-8b"), 8192)
    t = stage_times(costs, load_device(device), 1, 1)
    rows = costs.rows
    att = rows[(rows["kind"] == "attention") & (rows["group"] == "layer")]
    f = float(att.loc[att["phase"] == "forward", "flops"].sum())
    b = float(att.loc[att["phase"] == "backward", "flops"].sum())
    # one kernel each way: its FLOP at the utilization x peak, plus the launch floor of
    # 3.3 us (hw_specs/_architectures.yaml kernel_floor_us, A100-LAUNCH)
    floor = 3.3e-6
    assert t.attention_f == pytest.approx(f / (fwd * peak) + floor, rel=1e-6)
    assert t.attention_b == pytest.approx(b / (bwd * peak) + floor, rel=1e-6)
