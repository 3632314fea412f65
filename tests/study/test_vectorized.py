"""The vectorized pricing of spec overrides equals predict on the overridden spec, point by
point; the linear figures are found linear and the others are not."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

import perfmodel as pm
from perfmodel.errors import PerfModelError, SpecError, UnknownNameError
from perfmodel.hardware.overrides import override_device
from perfmodel.study.vectorized import POINT_COLUMNS, effect_of, price_overrides


def _predict(wl, device, changes, fusion="none"):
    return pm.predict(wl, override_device(device, changes), fusion=fusion).summary


def _check(point, summary):
    for col in POINT_COLUMNS:
        want, got = summary[col], point[col]
        if col == "energy_j" and want is None:
            assert math.isnan(got)
        elif isinstance(want, str) or isinstance(want, bool) or want is None:
            assert got == want, col
        else:
            assert got == pytest.approx(want, rel=1e-10, abs=1e-300), col


def test_linear_figures_are_found_linear():
    h100 = pm.load_device("h100")
    assert effect_of(h100, "memory.bandwidth_GBps").target == "bandwidth"
    assert effect_of(h100, "memory.capacity_GB").target == "capacity"
    assert effect_of(h100, "power.tdp_W").target == "tdp"
    assert effect_of(h100, "year").target == "none"
    fp8 = effect_of(h100, "compute.tensor_TFLOPS.fp8")
    assert (fp8.target, fp8.keys) == ("peak", (("tensor", "fp8"),))
    # the SM count changes the kernel model's wave quantization: not a linear figure
    assert effect_of(h100, "compute.units").target == "spec"


def test_a_peak_the_kernel_model_reads_is_priced_from_the_spec():
    # A100's spec gives an L2 bandwidth: its fp16 peak / that bandwidth caps small tiles
    # (hardware.load._cache_ridge), so doubling the peak is not a pure rescale
    a100 = pm.load_device("a100")
    assert effect_of(a100, "compute.tensor_TFLOPS.fp16").target == "spec"


def test_unknown_path_is_one_clear_error():
    with pytest.raises(UnknownNameError, match="did you mean"):
        effect_of(pm.load_device("h100"), "memory.bandwith_GBps")


@pytest.mark.parametrize("model,phase,batch,seq,dtype,fusion", [
    ("llama-2-7b", "decode", 8, 2048, "fp16", "none"),
    ("llama-2-7b", "prefill", 1, 512, "fp8", "epilogue"),
    ("resnet50", "inference", 64, None, "fp16", "none"),
    ("bert-base", "train", 32, 128, "bf16", "none"),
])
def test_every_point_equals_predict(model, phase, batch, seq, dtype, fusion):
    wl = pm.build_workload(pm.load_model(model), batch=batch, seq=seq, dtype=dtype,
                           phase=phase)
    h100 = pm.load_device("h100")
    changes = [{"memory.bandwidth_GBps": bw, "compute.tensor_TFLOPS.fp8": f8,
                "compute.units": u, "power.tdp_W": w, "memory.capacity_GB": cap}
               for bw, f8, u, w, cap in [(1000, 500, 132, 700, 80), (8000, 4000, 66, 350, 24),
                                         (3350, 1979, 132, 1000, 192),
                                         (500, 100, 200, 700, 8)]]
    out = price_overrides(wl, h100, changes, fusion=fusion)
    for i, c in enumerate(changes):
        _check({k: v[i] for k, v in out.items()}, _predict(wl, h100, c, fusion))


def test_a_random_sample_equals_predict():
    """50 random points over devices and linear and non-linear figures."""
    rng = random.Random(7)
    wls = [pm.build_workload(pm.load_model(m), batch=b, seq=s, dtype="fp16", phase=ph)
           for m, b, s, ph in [("llama-3-8b", 4, 1024, "decode"), ("gpt2", 16, 256, "prefill"),
                               ("mobilenet_v2", 1, None, "inference")]]
    devices = [pm.load_device(d) for d in ("a100", "mi300x", "l4", "v100")]
    for _ in range(50):
        wl, dev = rng.choice(wls), rng.choice(devices)
        if "fp16" not in dev.dtypes:
            continue
        c = {"memory.bandwidth_GBps": rng.uniform(300, 9000),
             "compute.tensor_TFLOPS.fp16": rng.uniform(50, 3000),
             "power.tdp_W": rng.uniform(50, 1500)}
        out = price_overrides(wl, dev, [c])
        _check({k: v[0] for k, v in out.items()}, _predict(wl, dev, c))


def test_no_overrides_is_predict():
    wl = pm.build_workload(pm.load_model("resnet50"), batch=8, dtype="fp16")
    a100 = pm.load_device("a100")
    out = price_overrides(wl, a100, [{}])
    _check({k: v[0] for k, v in out.items()}, pm.predict(wl, a100).summary)


def test_capacity_override_flips_the_fit_verdict():
    # llama-2-7b decode, batch 64 x 4096 tokens: KV cache 64 x 2 GiB = 128 GiB (2 x 32 layers
    # x 4096 hidden x 2 bytes x 4096 tokens = 2 GiB per sequence) plus 13.5 GB of weights
    wl = pm.build_workload(pm.load_model("llama-2-7b"), batch=64, seq=4096, dtype="fp16",
                           phase="decode")
    out = price_overrides(wl, pm.load_device("h100"), [{"memory.capacity_GB": 80},
                                                       {"memory.capacity_GB": 256}])
    assert list(out["fits"]) == [False, True]
    assert out["memory_bytes"][0] > 64 * 2 * 2**30


def test_bad_settings_are_refused():
    wl = pm.build_workload(pm.load_model("resnet50"), batch=1, dtype="fp16")
    h100 = pm.load_device("h100")
    with pytest.raises(SpecError, match="positive"):
        price_overrides(wl, h100, [{"memory.bandwidth_GBps": -1}])
    with pytest.raises(PerfModelError, match="same override paths"):
        price_overrides(wl, h100, [{"memory.bandwidth_GBps": 1}, {"power.tdp_W": 2}])
    assert np.all(price_overrides(wl, h100, [{"year": 2030}])["latency_s"] > 0)
