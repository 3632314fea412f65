"""What one GPU of a tensor- / expert-parallel inference replica computes and reads.

Megatron-style tensor parallelism t (Shoeybi et al. 2019, sec. 3; vLLM's
``ColumnParallelLinear`` / ``RowParallelLinear``; TensorRT-LLM the same): Q, K, V, the MLP's
up / gate and the experts' first linears split by columns, the attention output and the
MLP's down linears by rows, attention by heads; the ops between them (RoPE, the MLP
activation, the KV-cache writes) act on the rank's heads or columns. So every row of a
layer's attention (``self_attn.``) and MLP (``mlp.``, ``block_sparse_moe.experts.``,
shared experts) does 1/t of the work, and the LM head is vocabulary-parallel (1/t). Keys and
values split over min(t, KV heads): past the KV heads each is replicated (vLLM
``LlamaAttention``: ``num_kv_heads = max(1, total_kv_heads // tp)``). Replicated on every
rank: embeddings, the layer norms and residual adds between the blocks (inference engines
run no sequence parallelism), the MoE router (``gate``, its softmax, dispatch and combine),
and multi-head latent attention's down-projections and latent cache (vLLM DeepseekV2
``q_a_proj`` / ``kv_a_proj_with_mqa`` are ``ReplicatedLinear``).

Expert parallelism e (Megatron-Core semantics, perfmodel.workload.plan: the e expert ranks
are carved out of the data-parallel replicas, each expert still split over t): a rank holds
E / e experts and runs, for the e replicas' tokens, the copies routed to them: in
expectation tokens x k / t of expert work, the same as without EP (work is conserved), times
the load ``imbalance`` (busiest rank / mean, >= 1). It reads the weights of those of its
E / e experts that the e x tokens routed copies touch: E / e x (1 - (1 - k / E)^(e tokens)).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from perfmodel.graph.shape import ModelShape
from perfmodel.units import dtype as lookup_dtype

__all__ = ["shard", "tp_divisors", "is_expert", "REPLICATED", "KV_OPS"]

TP_REGION = (".self_attn.", ".mlp.", "block_sparse_moe.experts.", "shared_expert")
# suffixes of ops inside a region that every rank runs in full
REPLICATED = ("q_a_proj", "q_a_layernorm", "kv_a_proj_with_mqa", "kv_a_layernorm", "latent",
              "latent_cache_write", "k_pe", "compressed_kv", "shared_expert_gate",
              "shared_expert_sigmoid")
# suffixes of ops that act on keys / values: split over min(t, KV heads)
KV_OPS = ("k_proj", "v_proj", "k_rope", "k_norm", "k_cache_write", "v_cache_write")
EXPERT_PART = "block_sparse_moe.experts."
SCALED = ("macs", "flops", "input_bytes", "output_bytes", "weight_bytes", "params",
          "sparse_weight_bytes", "storage_bytes")


def is_expert(names: pd.Series) -> np.ndarray:
    """Rows of routed-expert ops (their weights are the experts')."""
    return names.astype(str).str.contains(EXPERT_PART, regex=False).to_numpy()


def tp_divisors(names: pd.Series, tp: int, shape: ModelShape) -> np.ndarray:
    """Per row, the share of its work one of ``tp`` ranks does (as a divisor)."""
    s = names.astype(str)
    region = np.zeros(len(s), bool)
    for part in TP_REGION:
        region |= s.str.contains(part, regex=False).to_numpy()
    region |= (s == "lm_head").to_numpy()
    last = s.str.rsplit(".", n=1).str[-1]
    replicated = last.isin(REPLICATED).to_numpy()
    kv = last.isin(KV_OPS).to_numpy()
    kv_split = 1 if shape.is_mla else min(tp, max(shape.num_key_value_heads, 1))
    return np.where(~region | replicated, 1.0, np.where(kv, kv_split, float(tp)))


def shard(table: pd.DataFrame, shape: ModelShape | None, tp: int = 1, ep: int = 1,
          tokens: float = 1.0, imbalance: float = 1.0) -> pd.DataFrame:
    """The rows one GPU runs (a new table): see the module docstring. ``tokens`` are the
    replica's tokens in this pass (batch x new tokens), for the experts' touched weights."""
    if shape is None or (tp == 1 and ep == 1 and imbalance == 1.0):
        return table
    df = table.copy()
    div = tp_divisors(df["name"], tp, shape)
    attention = (df["kind"].astype(str) == "attention").to_numpy()
    kv_split = 1 if shape.is_mla else min(tp, max(shape.num_key_value_heads, 1))
    for col in SCALED:
        if col in df:
            df[col] = df[col].to_numpy(float) / div
    if attention.any():  # inputs Q (/tp, as big as the output) and K, V (/kv split)
        out = table["output_bytes"].to_numpy(float)
        kv_in = np.maximum(table["input_bytes"].to_numpy(float) - out, 0.0)
        df.loc[attention, "input_bytes"] = (out / tp + kv_in / kv_split)[attention]
    experts = is_expert(df["name"])
    if shape.is_moe and experts.any() and (ep > 1 or imbalance != 1.0):
        for col in ("macs", "flops", "input_bytes", "output_bytes"):
            df.loc[experts, col] = df.loc[experts, col].to_numpy(float) * imbalance
        if ep > 1:
            e, k = shape.num_local_experts, shape.num_experts_per_tok
            full = (table["params"].to_numpy(float) / tp
                    * table["weight_dtype"].map(lambda d: lookup_dtype(d).nbytes).to_numpy(float))
            touched = e / ep * (1.0 - (1.0 - k / e) ** (ep * tokens))
            for col in ("weight_bytes", "sparse_weight_bytes"):
                df.loc[experts, col] = (full * touched / e)[experts]
            df.loc[experts, "params"] = df.loc[experts, "params"].to_numpy(float) / ep
    df["bytes"] = df["weight_bytes"] + df["input_bytes"] + df["output_bytes"]
    return df
