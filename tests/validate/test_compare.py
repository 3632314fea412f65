"""validate's joins: each measurement with the prediction for the same work."""

from __future__ import annotations

import pytest

from perfmodel.analytic.roofline import predict
from perfmodel.bench.measurement import measurement_frame
from perfmodel.errors import MeasurementError
from perfmodel.graph.shape import ModelShape
from perfmodel.hardware.load import device_from_dict, load_device
from perfmodel.inference.run import infer
from perfmodel.validate.compare import compare, generate_passes
from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model
from perfmodel.zoo.transformer import build_transformer
from tests.conftest import tiny_device_dict


def frame(*rows):
    base = {"backend": "cpu", "device": "tiny", "repeats": 1}
    return measurement_frame([{**base, **r} for r in rows])


def test_gemm_launch_membw_on_tiny_device(tiny_device):
    # tiny: 100 FLOP/s fp16 tensor, 10 B/s, efficiency 1, no overhead.
    # GEMM 10x10x10 fp16: 2000 FLOP -> 20 s; bytes (100 + 100 + 100) x 2 = 600 -> 60 s.
    # membw: 100 bytes -> 10 s. launch: the spec's overhead, 0.
    df = frame({"benchmark": "g", "family": "gemm", "dtype": "fp16", "m": 10, "n": 10,
                "k": 10, "time_s": 50.0},
               {"benchmark": "s", "family": "membw", "dtype": "fp32", "bytes": 100.0,
                "time_s": 8.0},
               {"benchmark": "p", "family": "latency", "time_s": 1e-6})
    out = compare(df, tiny_device)
    assert out["predicted_s"].tolist()[:2] == pytest.approx([60.0, 10.0])
    assert out["error"].tolist()[:2] == pytest.approx([0.2, 0.25])
    assert out["predict_note"][2].startswith("not predicted")


def test_launch_row_is_the_overhead():
    dev = device_from_dict(tiny_device_dict(efficiency={
        "launch_overhead_us": {"value": 4, "source": "HAND"}}), "t.yaml")
    out = compare(frame({"benchmark": "l", "family": "launch", "time_s": 5e-6}), dev)
    assert out["predicted_s"][0] == pytest.approx(4e-6)
    assert out["error"][0] == pytest.approx(-0.2)


def test_rows_need_a_device():
    with pytest.raises(MeasurementError, match="hw is empty"):
        compare(frame({"benchmark": "l", "family": "launch", "time_s": 1.0}))


def test_inference_row_is_predict_of_build_workload():
    a100 = load_device("a100")
    row = {"benchmark": "e2e", "family": "inference", "hw": "a100", "model": "resnet50",
           "batch": 8, "dtype": "fp16", "phase": "inference", "time_s": 2e-3}
    out = compare(frame(row), models=load_model)
    want = predict(build_workload(load_model("resnet50"), batch=8, dtype="fp16"), a100)
    assert out["predicted_s"][0] == pytest.approx(want.summary["latency_s"])


def test_generate_is_prefill_plus_decode_steps():
    # seq 8, out 4: prefill of 8 tokens + 3 decode steps at KV length 8 + 4 // 2 = 10
    a100 = load_device("a100")
    g = load_model("llama-2-7b")
    pre = predict(build_workload(g, batch=1, seq=8, phase="prefill"), a100).summary
    dec = predict(build_workload(g, batch=1, seq=10, phase="decode"), a100).summary
    row = {"benchmark": "e2e", "family": "inference", "hw": "a100", "model": "llama-2-7b",
           "batch": 1, "seq": 8, "out_seq": 4, "dtype": "fp16", "phase": "generate",
           "time_s": 0.1}
    out = compare(frame(row), models=load_model)
    assert out["predicted_s"][0] == pytest.approx(pre["latency_s"] + 3 * dec["latency_s"])
    assert out["priced_ops"][0] == pre["num_ops"] + 3 * dec["num_ops"]


def test_multi_device_rows_are_not_predicted():
    row = {"benchmark": "e2e", "family": "inference", "hw": "a100", "model": "resnet50",
           "batch": 1, "num_devices": 4, "time_s": 1.0}
    # not priced, so no model is built and no resolver is needed
    assert "4 devices" in compare(frame(row))["predict_note"][0]
    assert "4 devices" in compare(frame(row), models=load_model)["predict_note"][0]


def test_inference_rows_without_a_resolver_are_refused_with_a_hint():
    # compare no longer loads models by name itself: the caller says how names become graphs
    row = {"benchmark": "e2e", "family": "inference", "hw": "a100", "model": "resnet50",
           "batch": 1, "dtype": "fp16", "phase": "inference", "time_s": 1e-3}
    with pytest.raises(MeasurementError, match="no resolver") as err:
        compare(frame(row))
    assert "models=perfmodel.load_model" in err.value.hint
    assert "__getitem__" in err.value.hint


def _tiny_lm(layers: int = 2):
    """A small decoder of one's own (the workloads/README.md example), by layer count."""
    return ModelShape.from_dict({
        "architecture": "decoder", "vocab_size": 1000, "hidden_size": 64,
        "intermediate_size": 256, "num_hidden_layers": layers, "num_attention_heads": 4,
        "num_key_value_heads": 2, "max_position_embeddings": 512,
        "position_embedding": "rope", "norm": "rmsnorm", "norm_position": "pre",
        "activation": "silu", "mlp": "gated"})


def test_dict_resolver_prices_a_users_own_graph(tiny_device):
    # A row named after a graph the user built: the dict's __getitem__ resolves it, and the
    # price is predict(build_workload(graph, ...)) of that graph on the row's device.
    mine = build_transformer(_tiny_lm(), "my-lm")
    row = {"benchmark": "e2e", "family": "inference", "model": "my-lm", "batch": 2,
           "seq": 8, "dtype": "fp16", "phase": "prefill", "time_s": 1.0}
    out = compare(frame(row), tiny_device, models={"my-lm": mine}.__getitem__)
    want = predict(build_workload(mine, batch=2, seq=8, dtype="fp16", phase="prefill"),
                   tiny_device).summary
    assert out["predicted_s"][0] == pytest.approx(want["latency_s"]) and want["latency_s"] > 0
    assert out["priced_ops"][0] == want["num_ops"]
    assert out["error"][0] == pytest.approx((want["latency_s"] - 1.0) / 1.0)
    # a name the resolver does not know is the resolver's error, unchanged
    with pytest.raises(KeyError):
        compare(frame(row | {"model": "other-lm"}), tiny_device,
                models={"my-lm": mine}.__getitem__)


def test_rows_price_their_own_graph_even_when_graph_names_collide(tiny_device):
    # Two different graphs under one graph name (build_transformer's default
    # "transformer"), resolved from two row names: each row is priced with its own graph.
    # The 4-layer model does strictly more work than the 2-layer one, so the same job
    # cannot take the same time.
    two, four = build_transformer(_tiny_lm(2)), build_transformer(_tiny_lm(4))
    assert two.name == four.name == "transformer" and two != four
    base = {"benchmark": "e2e", "family": "inference", "batch": 1, "seq": 8,
            "dtype": "fp16", "phase": "prefill", "time_s": 1.0}
    resolver = {"two": two, "four": four}.__getitem__
    out = compare(frame(base | {"model": "two"}, base | {"model": "four"}), tiny_device,
                  models=resolver)
    alone = [compare(frame(base | {"model": m}), tiny_device, models=resolver)
             ["predicted_s"][0] for m in ("two", "four")]
    assert alone[1] > alone[0]
    assert out["predicted_s"].tolist() == pytest.approx(alone)


def test_llama_bench_rows_are_one_sequence_with_a_micro_batched_prompt():
    # llama-bench -p L -n N -pg L,N -b B: one sequence; prompt in micro-batches of
    # min(B, 512) tokens, then N single-token decode steps at mean KV length L + N / 2.
    assert generate_passes("llama.cpp", 16, 1024, 1024) == [
        (64.0, "prefill", 1, 16), (1024.0, "decode", 1, 1536)]
    # B = 1: every prompt token is a decode step at mean KV length L / 2
    assert generate_passes("llama.cpp", 1, 1024, 8) == [
        (1024.0, "decode", 1, 512), (8.0, "decode", 1, 1028)]
    # B above n_ubatch 512: the physical micro-batch is 512 (2048 / 512 = 4 of them)
    assert generate_passes("llama.cpp", 2048, 2048, 2)[0] == (4.0, "prefill", 1, 512)
    # a serving engine batches B sequences: one prefill, N - 1 decode steps
    assert generate_passes("vLLM", 16, 1024, 1024) == [
        (1.0, "prefill", 16, 1024), (1023.0, "decode", 16, 1536)]


def test_llama_cpp_generate_row_prices_its_passes():
    # llama-bench -p 8 -n 4 -b 4: one sequence, the prompt in 2 micro-batches of 4 tokens,
    # then 4 generated tokens, one decode pass each; priced through the llama-cpp profile
    a100 = load_device("a100")
    g = load_model("llama-2-7b")
    run = infer(g, a100, engine="llama-cpp", batch=1, input_len=8, output_len=5,
                chunk_tokens=4)
    assert run.passes["pass"].value_counts().to_dict() == {"prefill": 2, "decode": 4}
    row = {"benchmark": "e2e", "family": "inference", "hw": "a100", "model": "llama-2-7b",
           "batch": 4, "seq": 8, "out_seq": 4, "dtype": "fp16", "phase": "generate",
           "framework": "llama.cpp", "time_s": 0.1}
    out = compare(frame(row), models=load_model)
    assert out["predicted_s"][0] == pytest.approx(run.summary["total_s"], rel=1e-12)
    assert out["predict_note"][0].startswith("engine llama-cpp")
    # forcing a fusion mode prices the old way: the forward passes of GENERATE_PASSES
    pre = predict(build_workload(g, batch=1, seq=4, phase="prefill"), a100).summary
    dec = predict(build_workload(g, batch=1, seq=10, phase="decode"), a100).summary
    forced = compare(frame(row), models=load_model, fusion="none")
    assert forced["predicted_s"][0] == pytest.approx(2 * pre["latency_s"] + 4 * dec["latency_s"])


def test_l2_rows_read_at_the_cache_while_the_working_set_fits():
    # tiny + a 100-byte cache at 50 B/s (main memory 10 B/s), efficiency 1, no overhead.
    # 1,000 bytes read from a 80-byte working set: 1000 / 50 = 20 s; from a 200-byte one
    # (does not fit): 1000 / 10 = 100 s.
    d = tiny_device_dict()
    d["memory"].append({"name": "l2", "role": "cache",
                        "capacity_MB": {"value": 100e-6, "source": "HAND"},
                        "bandwidth_GBps": {"value": 50e-9, "source": "HAND"}})
    dev = device_from_dict(d, "t.yaml")
    rows = [{"benchmark": "l2_read", "family": "l2", "dtype": "fp32", "bytes": 1000.0,
             "working_set_bytes": ws, "time_s": 25.0} for ws in (80.0, 200.0)]
    assert compare(frame(*rows), dev)["predicted_s"].tolist() == pytest.approx([20.0, 100.0])
