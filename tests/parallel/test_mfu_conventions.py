"""Model FLOP per token under each framework's MFU convention, worked by hand."""

from __future__ import annotations

import pytest

from perfmodel import load_model
from perfmodel.errors import UnknownNameError
from perfmodel.parallel.mfu import CONVENTIONS, flops_per_token, matmul_counts, mfu

# llama-3-8b: h 4096, L 32, heads 32, KV heads 8, head_dim 128, gated MLP 14336, V 128256.
# Per layer: Q, O 4096 x 4096 each; K, V 4096 x 1024 each -> 41,943,040 weights;
#            MLP 3 x 4096 x 14336 = 176,160,768; together 218,103,808; x 32 = 6,979,321,856.
# Logits 4096 x 128256 = 525,336,576. Attention width per key: 2 x 32 x 128 = 8192 per layer,
# x 32 = 262,144. At seq 8192 (6 = 3 passes x 2 FLOP per multiply-add):
#   megatron = 6 (6,979,321,856 + 525,336,576) + 6 x 262,144 x 8192 / 2 = 51,470,401,536
#   maxtext  = the same (no router in a dense model)
#   palm     = 6 (6,979,321,856 + 525,336,576) + 6 x 262,144 x 8192   = 57,912,852,480
#   6n       = 6 x 6,979,321,856                                        = 41,875,931,136
#   narayanan = 72 x 32 x 4096^2 + 12 x 32 x 4096 x 8192 + 6 x 4096 x 128256
#             = 38,654,705,664 + 12,884,901,888 + 3,152,019,456       = 54,691,627,008
LLAMA3_8B_8K = {"megatron": 51_470_401_536, "maxtext": 51_470_401_536,
                "palm": 57_912_852_480, "6n": 41_875_931_136, "narayanan": 54_691_627_008}


@pytest.fixture(scope="module")
def llama():
    return load_model("llama-3-8b").shape


def test_every_convention_is_worked(llama):
    assert set(CONVENTIONS) == set(LLAMA3_8B_8K)


@pytest.mark.parametrize("convention", sorted(LLAMA3_8B_8K))
def test_llama3_8b_at_8192(llama, convention):
    assert flops_per_token(llama, 8192, convention) == pytest.approx(LLAMA3_8B_8K[convention])


def test_counts_of_llama3_8b(llama):
    c = matmul_counts(llama)
    assert (c.layers, c.router, c.attention, c.logits) == (
        6_979_321_856, 0, 262_144, 525_336_576)


def test_gpt3_175b_narayanan_is_eq3():
    # GPT-3 175B: h 12288, L 96, V 50257, s 2048; Narayanan eq. 3 per token:
    # 72 x 96 x 12288^2 x (1 + 2048 / (6 x 12288) + 50257 / (12 x 12288 x 96))
    s = load_model("gpt3-175b").shape
    h, n_l, v = s.hidden_size, s.num_hidden_layers, s.vocab_size
    expected = 72 * n_l * h * h * (1 + 2048 / (6 * h) + v / (12 * h * n_l))
    assert flops_per_token(s, 2048, "narayanan") == pytest.approx(expected)
    # a GPT layer (4h MLP, MHA): megatron differs from eq. 3 only by halving the scores
    assert flops_per_token(s, 2048, "megatron") == pytest.approx(
        expected - 6 * n_l * h * 2048)


def test_moe_counts_activated_experts_and_the_router():
    # mixtral-8x7b: 8 experts, top 2, expert MLP 3 x 4096 x 14336; router 4096 x 8 per layer
    s = load_model("mixtral-8x7b").shape
    c = matmul_counts(s)
    per_layer = 41_943_040 + 2 * 3 * 4096 * 14336
    assert c.layers == 32 * per_layer and c.router == 32 * 4096 * 8
    seq = 4096
    base = 6 * (c.layers + c.logits) + 6 * c.attention * seq / 2
    assert flops_per_token(s, seq, "megatron") == pytest.approx(base)
    assert flops_per_token(s, seq, "maxtext") == pytest.approx(base + 6 * c.router)


def test_mfu_is_flop_rate_over_peak(llama):
    # 10,000 tokens/s x 57.91 GFLOP / 1e15 FLOP/s
    assert mfu(llama, 8192, 10_000, 1e15, "palm") == pytest.approx(0.579128525)


def test_unknown_convention(llama):
    with pytest.raises(UnknownNameError, match="did you mean 'palm'"):
        flops_per_token(llama, 8192, "plam")
