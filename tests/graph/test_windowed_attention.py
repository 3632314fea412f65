"""Sliding-window layers cost only the pairs inside the window (graph.costs + attended_pairs)."""

from __future__ import annotations

from perfmodel.workload.build import build_workload
from perfmodel.zoo.registry import load_model


def test_mistral_prefill_past_its_window_counts_windowed_pairs():
    # Mistral-7B, window 4096, prefill of 8192 tokens: the first 4096 queries see 1..4096
    # keys (4096 x 4097 / 2 = 8,390,656 pairs), the other 4096 see 4096 each (16,777,216):
    # 25,167,872 pairs per head. Fused attention MACs = heads 32 x (d_qk 128 + d_v 128) x pairs
    t = build_workload(load_model("mistral-7b"), batch=1, seq=8192, phase="prefill").table
    attn = t[t["kind"] == "attention"]
    assert len(attn) == 32
    assert (attn["macs"] == 32 * 256 * 25_167_872).all()
    # within the window it is the plain causal count: 4096 x 4097 / 2 pairs
    t = build_workload(load_model("mistral-7b"), batch=1, seq=4096, phase="prefill").table
    assert t[t["kind"] == "attention"]["macs"].iloc[0] == 32 * 256 * 4096 * 4097 / 2
