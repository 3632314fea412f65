"""GEMM recipes for low-precision training (perfmodel.workload.precision): the shipped
figures, the cast bytes worked by hand, the device check and Job.gemm_recipe."""

from __future__ import annotations

import pytest

from perfmodel import load_device
from perfmodel.errors import PlanError, UnknownNameError
from perfmodel.files import data_dir, read_yaml
from perfmodel.workload.job import Job
from perfmodel.workload.precision import (
    GEMM_RECIPES,
    OPERANDS,
    PRECISION_FILE,
    all_gather_bytes_per_param,
    cast_bytes_per_element,
    check_gemm_recipe,
    gemm_recipe,
    saved_input_bytes,
)


def test_the_recipes():
    assert GEMM_RECIPES == ("fp8-delayed", "fp8-current", "fp8-blockwise", "mxfp8", "nvfp4",
                            "mxfp4")
    assert {gemm_recipe(n).forward for n in GEMM_RECIPES} == {"fp8", "fp4"}


def test_every_recipe_cites_a_shipped_source():
    d = read_yaml(data_dir("hw_specs") / PRECISION_FILE)
    for name, entry in d["recipes"].items():
        for key in entry["source"].split(", "):
            assert key in d["sources"], (name, key)


def test_mxfp8_scale_is_one_e8m0_byte_per_32_elements():
    r = gemm_recipe("mxfp8")
    assert [r.scale_bytes(o) for o in OPERANDS] == [1 / 32] * 3
    assert r.element_bytes("activation") == 1 + 1 / 32
    assert r.te_recipe == "MXFP8BlockScaling"


def test_nvfp4_is_one_e4m3_byte_per_16_elements_plus_a_per_tensor_fp32():
    r = gemm_recipe("nvfp4")
    assert r.scale_bytes("activation") == r.scale_bytes("gradient") == 1 / 16
    assert r.scale_bytes("weight") == 1 / 256  # 16 x 16 blocks for weights (TE default)
    assert r.per_tensor_scale_bytes == 4
    assert r.element_bytes("activation") == 0.5 + 1 / 16
    assert r.amax_pass  # the per-tensor scale needs the tensor's amax first


def test_deepseek_blocks_are_fp32_scales_per_128_and_per_128x128():
    r = gemm_recipe("fp8-blockwise")
    assert r.scale_bytes("activation") == 4 / 128
    assert r.scale_bytes("weight") == 4 / 16384


def test_per_tensor_fp8_is_hybrid_with_no_per_element_scale():
    r = gemm_recipe("fp8-delayed")
    assert (r.forward, r.backward) == ("fp8", "fp8")
    assert "E5M2" in r.formats and r.scale_bytes("activation") == 0.0


def test_unknown_recipe_names_the_nearest():
    with pytest.raises(UnknownNameError, match="did you mean 'mxfp8'"):
        gemm_recipe("mxfp9")


@pytest.mark.parametrize("name, arch, expected", [
    # read 2 B of bf16, write the fp8 copy (1 B) and its Hopper transpose (1 B)
    ("fp8-delayed", "hopper", 2 + 2 * 1),
    ("fp8-delayed", "blackwell", 2 + 1),  # Blackwell reads one layout both ways
    ("fp8-current", "hopper", 2 + 2 + 2 * 1),  # an amax read before the cast
    ("mxfp8", "blackwell", 2 + 2 * (1 + 1 / 32)),  # rowwise and columnwise quantized apart
    ("nvfp4", "blackwell", 2 + 2 + 2 * (0.5 + 1 / 16)),
    ("fp8-blockwise", "hopper", 2 + 2 * (1 + 4 / 128)),
])
def test_cast_bytes_per_element_by_hand(name, arch, expected):
    assert cast_bytes_per_element(name, "activation", 2.0, arch) == expected


def test_saved_input_is_the_columnwise_copy_alone():
    assert saved_input_bytes("fp8-delayed") == 1.0
    assert saved_input_bytes("nvfp4") == 0.5 + 1 / 16


def test_all_gather_bytes_per_param():
    assert all_gather_bytes_per_param("fp8-delayed") == 1.0
    assert all_gather_bytes_per_param("mxfp8") == 2 * (1 + 1 / 32)  # 1D: both copies
    assert all_gather_bytes_per_param("nvfp4") == 0.5 + 1 / 256
    assert all_gather_bytes_per_param(None, "bf16") == 2.0


def test_mxfp8_and_nvfp4_need_blackwell():
    h100 = load_device("h100-sxm5-80gb")
    for name in ("mxfp8", "nvfp4", "mxfp4"):
        with pytest.raises(PlanError, match="blackwell") as err:
            check_gemm_recipe(name, h100)
        assert "fp8-delayed" in err.value.hint  # what the device can run instead
    assert check_gemm_recipe("mxfp8", load_device("b200")).name == "mxfp8"
    assert check_gemm_recipe("fp8-blockwise", h100).name == "fp8-blockwise"


def test_per_tensor_fp8_needs_ada_or_later():
    with pytest.raises(PlanError, match="hopper"):
        check_gemm_recipe("fp8-delayed", load_device("a100-sxm4-80gb"))


def test_job_gemm_recipe_round_trips_and_is_checked():
    job = Job(phase="train", dtype="bf16", gemm_recipe="fp8-delayed")
    assert Job.from_dict(job.to_dict()) == job
    assert Job(phase="train").gemm_recipe is None
    with pytest.raises(UnknownNameError, match="gemm recipe"):
        Job(phase="train", gemm_recipe="fp8")
    with pytest.raises(PlanError, match="training"):
        Job(phase="decode", gemm_recipe="fp8-delayed")
