"""Properties the whole model keeps, checked on inputs hypothesis draws: the same input gives
byte-identical JSON; more bandwidth or FLOP/s never makes anything slower; more devices at
fixed work never hold more bytes each; a pipeline's bubble lies in [0, 1); the simulator is
never faster than the contention-free closed form.

A fixed example budget with a fixed seed (``derandomize=True``): the same examples every
run, small enough that the file takes seconds. A property that does not hold is a finding:
it stays here, marked ``xfail(strict=True)`` with the counterexample, until the model is
fixed.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from perfmodel.analytic.collectives import collective_time
from perfmodel.analytic.memory import check_memory_plan, footprint
from perfmodel.analytic.network import predict_collective
from perfmodel.analytic.roofline import predict
from perfmodel.cli.main import main
from perfmodel.errors import PerfModelError
from perfmodel.hardware.load import load_device
from perfmodel.hardware.system import load_system, system_from_dict
from perfmodel.sim.collective_sweep import collective_sweep
from perfmodel.sim.schedules import simulate_pipeline
from perfmodel.workload.build import build_workload
from perfmodel.workload.job import Job
from perfmodel.workload.plan import ParallelPlan
from perfmodel.zoo.registry import load_model
from tests.hardware.test_system import tiny_system_dict

# CI: the budgets below, the same examples every run; PERFMODEL_PROPERTY_SCALE=30 multiplies
# every budget, PERFMODEL_FUZZ_RANDOM=1 draws new examples (as tests/fuzz does)
SCALE = int(os.environ.get("PERFMODEL_PROPERTY_SCALE", "1"))
FIXED = os.environ.get("PERFMODEL_FUZZ_RANDOM") != "1"


def fixed(n: int) -> settings:
    """n examples (x SCALE), the same ones every run, no per-example deadline (a first call
    pays for imports and caches)."""
    return settings(max_examples=n * SCALE, derandomize=FIXED, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


@functools.cache
def graph(name: str):
    return load_model(name)


@functools.cache
def device(name: str):
    return load_device(name)


@functools.cache
def system(name: str):
    return load_system(name)


# --- same input, same bytes --------------------------------------------------------------

def twice(capsys, argv: list[str]) -> tuple[tuple, tuple]:
    """Run one command twice in this process; (exit code, stdout, stderr) of each."""
    out = []
    for _ in range(2):
        code = main([*argv, "--format", "json"])
        out.append((code, *capsys.readouterr()))
    return out[0], out[1]


def check_same_bytes(capsys, argv: list[str]) -> None:
    first, second = twice(capsys, argv)
    assert first[0] in (0, 3), (argv, first[2])   # the drawn inputs are valid
    assert first == second, argv


MODELS = ["resnet50", "mobilenet_v2", "gpt2", "llama-2-7b", "bert-base"]
DEVICES = ["a100", "h100", "rtx-4090", "mi300x", "t4"]


@fixed(15)
@given(model=st.sampled_from(MODELS), hw=st.sampled_from(DEVICES),
       batch=st.integers(1, 16), phase=st.sampled_from(["inference", "prefill", "decode"]),
       seq=st.sampled_from([128, 256, 512]), fusion=st.sampled_from(["none", "epilogue"]))
def test_roofline_json_is_byte_identical(capsys, model, hw, batch, phase, seq, fusion):
    llm = model in ("gpt2", "llama-2-7b", "bert-base")
    argv = ["roofline", model, "--hw", hw, "--batch", str(batch), "--fusion", fusion]
    if llm:
        argv += ["--seq", str(seq), "--phase", "inference" if model == "bert-base" else phase]
    check_same_bytes(capsys, argv)


@fixed(15)
@given(model=st.sampled_from(["gpt2", "llama-2-7b"]), hw=st.sampled_from(DEVICES),
       phase=st.sampled_from(["inference", "decode", "train"]), batch=st.integers(1, 16),
       tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2, 4]))
def test_memory_json_is_byte_identical(capsys, model, hw, phase, batch, tp, pp):
    check_same_bytes(capsys, ["memory", model, "--hw", hw, "--phase", phase, "--batch",
                              str(batch), "--seq", "512", "--tp", str(tp), "--pp", str(pp)])


PRIMITIVES = ["all_reduce", "all_gather", "reduce_scatter", "broadcast", "all_to_all"]
SMALL_SYSTEMS = ["dgx-a100", "dgx-h100", "pcie-8x-4090", "mi300x-8", "h100-nvl-pair"]


@fixed(15)
@given(sys_name=st.sampled_from(SMALL_SYSTEMS), primitive=st.sampled_from(PRIMITIVES),
       gpus=st.integers(2, 8), low=st.integers(3, 20), span=st.integers(0, 10))
def test_collective_json_is_byte_identical(capsys, sys_name, primitive, gpus, low, span):
    gpus = min(gpus, system(sys_name).devices_per_node)
    check_same_bytes(capsys, ["collective", primitive, "--system", sys_name, "--gpus",
                              str(gpus), "--min-bytes", str(2 ** low),
                              "--max-bytes", str(2 ** (low + span))])


@fixed(15)
@given(sys_name=st.sampled_from(SMALL_SYSTEMS), primitive=st.sampled_from(PRIMITIVES),
       gpus=st.integers(2, 8), size=st.integers(10, 26), chunks=st.integers(1, 4),
       slow=st.sampled_from([None, "n0.d1=2"]))
def test_collective_sim_json_is_byte_identical(capsys, sys_name, primitive, gpus, size,
                                               chunks, slow):
    gpus = min(gpus, system(sys_name).devices_per_node)
    argv = ["collective", primitive, "--system", sys_name, "--gpus", str(gpus), "--bytes",
            str(2 ** size), "--sim", "--chunks", str(chunks)]
    check_same_bytes(capsys, argv + (["--slow", slow] if slow else []))


@fixed(15)
@given(stages=st.integers(1, 6), m=st.integers(1, 12),
       schedule=st.sampled_from(["gpipe", "1f1b", "interleaved"]), virtual=st.integers(1, 3),
       activation=st.sampled_from([0, 1e6]), link=st.sampled_from(["", "10"]))
def test_pipeline_json_with_its_timeline_is_byte_identical(capsys, stages, m, schedule,
                                                           virtual, activation, link):
    if schedule == "interleaved":
        m = stages * max(1, m // stages)
    else:
        virtual = 1
    argv = ["pipeline", "--stages", str(stages), "--micro-batches", str(m), "--schedule",
            schedule, "--virtual", str(virtual), "--activation-bytes", str(activation)]
    check_same_bytes(capsys, argv + (["--link-GBps", link] if link else []))


@fixed(15)
@given(model=st.sampled_from(["gpt2", "llama-2-7b"]), tp=st.sampled_from([1, 2, 4]),
       pp=st.sampled_from([1, 2, 4]), dp=st.sampled_from([1, 2]), sim=st.booleans(),
       schedule=st.sampled_from(["1f1b", "gpipe"]))
def test_parallel_json_is_byte_identical(capsys, model, tp, pp, dp, sim, schedule):
    argv = ["parallel", model, "--system", "dgx-a100", "--gpus", str(tp * pp * dp),
            "--tp", str(tp), "--pp", str(pp), "--seq", "512", "--global-batch",
            str(8 * dp), "--schedule", schedule]
    check_same_bytes(capsys, argv + (["--sim"] if sim else []))


# One command of each kind in two fresh interpreters with different hash seeds: nothing may
# depend on set or dict order, object ids or what an earlier run left in a cache.
FRESH = [
    ["roofline", "llama-2-7b", "--hw", "h100", "--phase", "decode", "--seq", "2048",
     "--batch", "8", "--fusion", "epilogue"],
    ["memory", "llama-2-13b", "--hw", "a100", "--phase", "train", "--batch", "32", "--seq",
     "4096", "--tp", "4", "--pp", "2", "--dp", "4", "--zero", "1"],
    ["collective", "all_reduce", "--system", "dgx-a100", "--nodes", "2", "--min-bytes", "8",
     "--max-bytes", "64M"],
    ["collective", "all_to_all", "--system", "pcie-8x-4090", "--bytes", "1M", "--sim",
     "--chunks", "2", "--slow", "n0.d3=2"],
    ["pipeline", "--stages", "4", "--micro-batches", "8", "--schedule", "interleaved",
     "--virtual", "2", "--activation-bytes", "1e6", "--link-GBps", "10"],
    ["parallel", "gpt2", "--system", "dgx-a100", "--gpus", "8", "--tp", "2", "--pp", "2",
     "--seq", "512", "--global-batch", "16", "--sim"],
]
RUN_ALL = """
import contextlib, io, json, sys
from perfmodel.cli.main import main
out = []
for argv in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main([*argv, "--format", "json"])
    out.append([code, buf.getvalue()])
print(json.dumps(out))
"""


@pytest.mark.slow
def test_json_is_byte_identical_across_processes_and_hash_seeds():
    runs = []
    for seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        done = subprocess.run([sys.executable, "-c", RUN_ALL, json.dumps(FRESH)], env=env,
                              capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout))
    assert [code for code, _ in runs[0]] == [0] * len(FRESH), runs[0]
    for argv, first, second in zip(FRESH, *runs, strict=True):
        assert first == second, argv


# --- more bandwidth, never slower --------------------------------------------------------

def faster_device(dev, bandwidth: float, flops: float):
    """The device with its main-memory bandwidth x ``bandwidth`` and every peak x ``flops``."""
    memory = tuple(dataclasses.replace(m, bandwidth_Bps=m.bandwidth_Bps * bandwidth)
                   if m.role == "main" and m.bandwidth_Bps else m for m in dev.memory)
    peaks = {k: v * flops for k, v in dev.peak_flops.items()}
    return dataclasses.replace(dev, memory=memory, peak_flops=peaks)


@functools.cache
def workload(model: str, batch: int, phase: str, dtype: str):
    seq = 512 if graph(model).shape is not None else None
    return build_workload(graph(model), batch=batch, seq=seq, dtype=dtype, phase=phase)


factor = st.sampled_from([1.0, 1.001, 1.1, 1.5, 2.0, 4.0, 10.0])


@fixed(150)
@given(model=st.sampled_from(MODELS), hw=st.sampled_from(DEVICES),
       batch=st.sampled_from([1, 8, 64]), phase=st.sampled_from(["inference", "decode",
                                                                 "train"]),
       bandwidth=factor, flops=factor, hierarchical=st.booleans(),
       fusion=st.sampled_from(["none", "epilogue"]))
def test_more_bandwidth_or_flops_never_raises_roofline_latency(
        model, hw, batch, phase, bandwidth, flops, hierarchical, fusion):
    if graph(model).shape is None or model == "bert-base":
        phase = "train" if phase == "train" else "inference"
    dev = device(hw)
    wl = workload(model, batch, phase, dev.default_dtype)
    base = predict(wl, dev, hierarchical=hierarchical, fusion=fusion).summary["latency_s"]
    more = predict(wl, faster_device(dev, bandwidth, flops), hierarchical=hierarchical,
                   fusion=fusion).summary["latency_s"]
    assert more <= base * (1 + 1e-12), (model, hw, batch, phase, bandwidth, flops, base, more)


def faster_links(sysm, scale_up: float, uplink: float, scale_out: float):
    """The system with its scale-up links, PCIe uplinks and NICs each x its factor."""
    f = sysm.scale_up
    fabric = dataclasses.replace(f, bandwidth_Bps=f.bandwidth_Bps * scale_up,
                                 uplink_Bps=None if f.uplink_Bps is None
                                 else f.uplink_Bps * uplink)
    net = sysm.scale_out and dataclasses.replace(sysm.scale_out,
                                                 nic_Bps=sysm.scale_out.nic_Bps * scale_out)
    return dataclasses.replace(sysm, scale_up=fabric, scale_out=net)


ALL_SYSTEMS = ["dgx-a100", "dgx-h100", "dgx-b200", "pcie-8x-4090", "mi300x-8",
               "h100-nvl-pair", "azure-nc-a100-v4", "ascend-910b-8", "hgx-h200",
               "gcp-a3-mega", "tpu-v4-4x4x4", "gb200-nvl72"]
ALL_PRIMITIVES = ["all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce",
                  "all_to_all", "send_recv", "scatter", "gather"]


@fixed(200)
@given(sys_name=st.sampled_from(ALL_SYSTEMS), primitive=st.sampled_from(ALL_PRIMITIVES),
       algorithm=st.sampled_from(["auto", "ring", "tree", "hierarchical", "nvls",
                                  "parameter_server", "recursive"]),
       nodes=st.integers(1, 4), size=st.integers(0, 32), scale_up=factor, uplink=factor,
       scale_out=factor)
def test_more_link_bandwidth_never_slows_a_collective(sys_name, primitive, algorithm, nodes,
                                                       size, scale_up, uplink, scale_out):
    s = system(sys_name)
    nodes = min(nodes, s.nodes)
    try:
        base = predict_collective(s, primitive, [2.0 ** size], nodes, None, algorithm)
    except PerfModelError:
        assume(False)   # not a valid combination (algorithm x primitive x system)
    more = predict_collective(faster_links(s, scale_up, uplink, scale_out), primitive,
                              [2.0 ** size], nodes, None, algorithm)
    t0, t1 = base.table["time_us"][0], more.table["time_us"][0]
    assert t1 <= t0 * (1 + 1e-12), (sys_name, primitive, algorithm, nodes, 2 ** size,
                                    scale_up, uplink, scale_out, t0, t1,
                                    base.table["algorithm"][0], more.table["algorithm"][0])


# --- more devices at fixed work, never more bytes each -----------------------------------

LLMS = ["gpt2", "llama-2-7b", "mistral-7b", "llama-3-8b"]


def grown_plans(model, phase, batch, seq, tp, pp, more_tp, more_pp, micro, recompute,
                schedule):
    """The job and two plans for it, the second with tp and pp each x more (or the same);
    None where the memory model refuses either plan for this model and batch."""
    job = Job(phase=phase, batch=batch, seq=seq, dtype="bf16")
    train = phase == "train"
    plans = [ParallelPlan(tensor_parallel=t, pipeline_parallel=p,
                          micro_batch=min(micro, batch) if train else None,
                          recompute=recompute if train else "none", schedule=schedule)
             for t, p in ((tp, pp), (tp * more_tp, pp * more_pp))]
    try:
        for plan in plans:
            check_memory_plan(graph(model), plan, job)
    except PerfModelError:
        return None
    return job, plans


def check_bytes_per_device(model, *args):
    drawn = grown_plans(model, *args)
    assume(drawn is not None)
    job, plans = drawn
    fewer, more = (float(footprint(graph(model), plan, job)["total"]) for plan in plans)
    assert more <= fewer * (1 + 1e-12), (model, args, fewer, more)


plan_space = dict(phase=st.sampled_from(["inference", "decode", "train"]),
                  batch=st.sampled_from([1, 4, 16, 64]), seq=st.sampled_from([128, 1024, 4096]),
                  tp=st.sampled_from([1, 2, 4]), pp=st.sampled_from([1, 2, 4, 6]),
                  more_tp=st.sampled_from([1, 2, 4]), more_pp=st.sampled_from([1, 2, 3, 4]),
                  micro=st.sampled_from([1, 2, 4]),
                  recompute=st.sampled_from(["none", "selective", "full"]),
                  schedule=st.sampled_from(["1f1b", "gpipe"]))


@pytest.mark.xfail(strict=True, reason=(
    "FINDING: pipeline stages that do not divide the layer count. gpt2 (12 layers), train, "
    "global batch 16, seq 1024, micro-batch 2 (m = 8), 1F1B, tp 1: pp 4 -> 1.644 GB per "
    "device, pp 8 -> 1.744 GB. The fullest stage holds ceil(12/8) = 2 layers and min(p, m) "
    "= 8 micro-batches in flight: 16 layer-micro-batches of activations against 3 x 4 = 12 "
    "(activations 642 -> 856 MB); check_plan accepts pp 8 for 12 layers (Megatron-LM asserts "
    "num_layers % pp == 0)"))
@fixed(200)
@example(model="gpt2", phase="train", batch=16, seq=1024, tp=1, pp=4, more_tp=1, more_pp=2,
         micro=2, recompute="none", schedule="1f1b")
@given(model=st.sampled_from(LLMS), **plan_space)
def test_more_tensor_or_pipeline_parallel_never_raises_bytes_per_device(model, **drawn):
    check_bytes_per_device(model, *drawn.values())


@fixed(200)
@given(model=st.sampled_from(LLMS), **plan_space)
def test_the_same_where_pipeline_stages_divide_the_layers(model, **drawn):
    layers = graph(model).shape.num_hidden_layers
    assume(layers % (drawn["pp"] * drawn["more_pp"]) == 0)
    check_bytes_per_device(model, *drawn.values())


# --- pipeline bubble -----------------------------------------------------------------------

@st.composite
def pipelines(draw, uneven: bool = False, fill: bool = True,
              schedules: tuple[str, ...] = ("gpipe", "1f1b", "interleaved")):
    """A valid pipeline (schedule, stages p, micro-batches m, forward and backward times,
    virtual stages). ``fill``: m >= p, where the closed form's bubble (p-1)/m, (p-1)/(v m)
    interleaved, is below 1; ``uneven``: one time per virtual stage."""
    stages = draw(st.integers(1, 6))
    schedule = draw(st.sampled_from(schedules))
    virtual = draw(st.integers(2, 3)) if schedule == "interleaved" else 1
    if schedule == "interleaved":  # Megatron-LM: m a multiple of p
        m = stages * draw(st.integers(1, 4))
    else:
        m = draw(st.integers(stages if fill else 1, 4 * stages))
    n = stages * virtual
    time = st.floats(0.1, 10.0, allow_nan=False)
    tf = draw(st.lists(time, min_size=n, max_size=n)) if uneven else draw(time)
    tb = draw(st.lists(time, min_size=n, max_size=n)) if uneven else draw(time)
    return schedule, stages, m, tf, tb, virtual


def simulate(pipe):
    schedule, stages, m, tf, tb, virtual = pipe
    return simulate_pipeline(schedule, stages, m, tf, tb, virtual=virtual)


# held once rounding (|bubble| < 1e-12) is reported as 0: gpipe, 1 stage, 3 micro-batches,
# tf 0.1, tb 1.0 gave -1.35e-16 (ideal 3.3000000000000003 as a product, step 3.3 as a sum)
@fixed(100)
@example(("gpipe", 1, 3, 0.1, 1.0, 1))
@given(pipelines(fill=False))
def test_bubble_is_never_negative(pipe):
    assert simulate(pipe).bubble >= 0.0, pipe


@fixed(100)
@given(pipelines())
def test_bubble_of_a_filled_uniform_pipeline_is_below_1(pipe):
    bubble = simulate(pipe).bubble
    assert -1e-12 < bubble < 1.0, (pipe, bubble)  # below 0 by rounding only (above)


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (GPipe itself, not the simulator): uneven stages whose forward and backward "
    "bottlenecks sit on different devices. gpipe, p 5, m 5, t_forward [1, 1, 1, 3, 1], "
    "t_backward [1, 1, 3, 1, 3]: all forwards take sum(tf) + (m-1) max(tf) = 7 + 12, all "
    "backwards sum(tb) + (m-1) max(tb) = 9 + 12, step 40 against the busiest device's 20: "
    "bubble 1.0; hypothesis also found 1.10 (tf [5.88, 1, 1, 8.74, 3.75], tb [3.75, 4.41, "
    "6.67, 1, 4.41]). 1F1B and interleaved stay below 1 (next test)"))
@fixed(100)
@example(("gpipe", 5, 5, [1.0, 1.0, 1.0, 3.0, 1.0], [1.0, 1.0, 3.0, 1.0, 3.0], 1))
@given(pipelines(uneven=True))
def test_bubble_of_a_filled_uneven_pipeline_is_below_1(pipe):
    bubble = simulate(pipe).bubble
    assert -1e-12 < bubble < 1.0, (pipe, bubble)


@fixed(100)
@given(pipelines(uneven=True, schedules=("1f1b", "interleaved")))
def test_bubble_of_a_filled_uneven_1f1b_pipeline_is_below_1(pipe):
    bubble = simulate(pipe).bubble
    assert -1e-12 < bubble < 1.0, (pipe, bubble)


@fixed(100)
@given(pipelines(uneven=True, fill=False))
def test_bubble_as_a_share_of_the_step_is_below_1_for_any_micro_batch_count(pipe):
    run = simulate(pipe)   # m < p: the bubble over ideal is (p-1)/m >= 1, by design
    share = 1 - run.ideal_s / run.step_s
    assert -1e-12 < share < 1.0, (pipe, share)


# --- the simulator is never faster than the contention-free closed form -------------------
# Compared at chunks = 1 (the closed forms have no granularity: pieces pipelined over the
# steps legitimately beat them) with the algorithm named: auto is ring in the simulator but
# NCCL's pick (tree, NVLS) in the model. Both read the same efficiencies at the size
# (perfmodel.analytic.network.link_efficiency).

RING_FAMILY = ["all_reduce", "all_gather", "reduce_scatter", "broadcast", "reduce"]
DIRECT = ["all_to_all", "send_recv", "scatter", "gather"]   # one transfer per peer, no ring
NO_ARRIVAL = ("FINDING (the two model different things): the simulated {p} sends its p-1 "
              "pieces as concurrent flows, so one step latency alpha is paid (since the last "
              "data's arrival is now waited for), while the closed form counts p-1 dependent "
              "steps. {example}")
UNIFORM_SYSTEMS = ["dgx-a100", "dgx-h100", "dgx-b200", "pcie-8x-4090", "mi300x-8",
                   "ascend-910b-8", "hgx-h200", "gcp-a3-mega", "tpu-v4-4x4x4"]
PAIRS_SYSTEMS = ["h100-nvl-pair", "azure-nc-a100-v4"]   # NVLink pairs joined over PCIe


def check_sim_against_model(sys_name, primitive, algorithm, nodes, per_node, size):
    s = system(sys_name)
    nodes, per_node = min(nodes, s.nodes), min(per_node, s.devices_per_node)
    args = (s, primitive, [2 ** size], nodes, per_node, algorithm)
    try:
        sim = collective_sweep(*args, method="sim").table["time_us"][0]
    except PerfModelError:
        assume(False)   # no such algorithm for this primitive, or one device
    model = collective_sweep(*args, method="analytic").table["time_us"][0]
    assert sim >= model * (1 - 1e-9), (sys_name, primitive, algorithm, nodes, per_node,
                                       2 ** size, sim, model)


shapes = dict(algorithm=st.sampled_from(["ring", "hierarchical", "parameter_server"]),
              nodes=st.integers(1, 2), per_node=st.integers(2, 8), size=st.integers(3, 30))
MODEL_EXAMPLE = ("dgx-h100, 8 GPUs, ring, 1 MiB: {p} simulated {sim} us, the system model "
                 "{model} us")


@pytest.mark.parametrize("primitive", [
    *RING_FAMILY,
    *(pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=NO_ARRIVAL.format(
        p=p, example=MODEL_EXAMPLE.format(p=p, sim=sim, model=model))))
      for p, sim, model in (("all_to_all", 20.71, 24.31), ("send_recv", 21.13, 22.94),
                            ("scatter", 20.71, 24.31), ("gather", 20.71, 24.31)))])
@fixed(40)
@example(sys_name="dgx-h100", algorithm="ring", nodes=1, per_node=8, size=20)  # the reasons'
@given(sys_name=st.sampled_from(UNIFORM_SYSTEMS), **shapes)
def test_simulated_collective_is_never_faster_than_the_system_model(primitive, sys_name,
                                                                    **drawn):
    check_sim_against_model(sys_name, primitive, *drawn.values())


@pytest.mark.xfail(strict=True, reason=(
    "FINDING (the two model different things): on NVLink pairs joined over PCIe the "
    "simulated ring is faster than the system model, which charges the step latency on "
    "every step of the bottleneck route; the simulator streams the PCIe route's steps back "
    "to back, their inputs arriving early over NVLink. h100-nvl-pair, 4 GPUs, ring "
    "all_reduce of 512 KiB: simulated 34.184 us, model 37.184 us (-8.1%); all_gather "
    "25.992 vs 27.192 us"))
@fixed(20)
@example(sys_name="h100-nvl-pair", primitive="all_reduce", algorithm="ring", nodes=1,
         per_node=4, size=19)
@given(sys_name=st.sampled_from(PAIRS_SYSTEMS), primitive=st.sampled_from(RING_FAMILY),
       **shapes)
def test_simulated_collective_on_nvlink_pairs_is_never_faster_than_the_system_model(
        sys_name, primitive, **drawn):
    check_sim_against_model(sys_name, primitive, *drawn.values())


def uniform_system(p: int, topology: str, gbps: float, alpha_us: float):
    """p devices on a direct ring or one switch, every link gbps GB/s and alpha_us: the
    closed form's own assumptions (no efficiency curve: 1)."""
    return system_from_dict(tiny_system_dict(
        devices_per_node={"value": p, "source": "HAND"},
        scale_up={"topology": topology,
                  "bandwidth_GBps_per_direction": {"value": gbps, "source": "HAND"},
                  "latency_us": {"value": alpha_us, "source": "HAND"}}))


ALPHA_BETA_EXAMPLE = ("4 devices on a switch, 100 GB/s, alpha 10 us, 1 MiB: simulated {sim} "
                      "us, alpha-beta {closed} us")


@pytest.mark.parametrize("primitive", [
    *RING_FAMILY,
    "send_recv",   # held once the last send's arrival was waited for (was 10.486 < 20.486 us)
    *(pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=NO_ARRIVAL.format(
        p=p, example=ALPHA_BETA_EXAMPLE.format(sim=sim, closed=closed))))
      for p, sim, closed in (("all_to_all", 17.864, 37.864), ("scatter", 17.864, 37.864),
                             ("gather", 17.864, 37.864)))])
@fixed(60)
@example(p=4, topology="switch", gbps=100.0, alpha_us=10.0, size=20)  # the reasons' example
@given(p=st.integers(2, 12), topology=st.sampled_from(["ring", "switch"]),
       gbps=st.floats(0.1, 1000.0), alpha_us=st.floats(0.0, 50.0), size=st.integers(0, 32))
def test_simulated_collective_is_never_faster_than_alpha_beta(primitive, p, topology, gbps,
                                                              alpha_us, size):
    s = uniform_system(p, topology, gbps, alpha_us)
    sim = collective_sweep(s, primitive, [2 ** size], method="sim").table["time_us"][0]
    closed = 1e6 * float(collective_time(primitive, 2.0 ** size, p, alpha_us * 1e-6,
                                         gbps * 1e9))
    assert sim >= closed * (1 - 1e-9), (primitive, p, topology, gbps, alpha_us, 2 ** size,
                                        sim, closed)
