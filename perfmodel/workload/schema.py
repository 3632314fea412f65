"""The Workload table: one row per op and phase. Everything downstream takes this table.

Columns (SI units; FLOP and bytes per execution of the op for the whole batch):

=============  ======================================================================
model          model name
name           op name (scoped like the reference implementation, e.g. layer3.2.conv1)
kind           op kind (perfmodel.graph.kinds.OpKind value)
layer          the builder scope the op belongs to
phase          inference | prefill | decode | forward | backward | optimizer
unit           tensor | vector | none: which compute unit the op wants
dtype          compute dtype of the row (an op's compute_dtype attr, else the workload's)
macs           multiply-accumulates
flops          floating-point (or integer) operations; 2 x macs for MAC ops
params         trainable parameters owned by the op (tied weights count once)
weight_bytes   bytes of weights read
input_bytes    bytes of activations / KV cache read
output_bytes   bytes written
bytes          weight_bytes + input_bytes + output_bytes
intensity      flops / bytes (FLOP/byte; inf where nothing is moved)
costed         False where no cost rule exists: those rows are reported, never zeroed
weight_dtype   dtype the op's weights are stored and moved in (op attr, else workload's)
sparsity       fraction of zero weights in the op's main weight tensor (0 = dense)
sparse_pattern "" (dense), unstructured, or 2:4
storage_bytes  bytes the op's own weights take on disk in their stored format (sparse
               values + indices, codebook indices + codebook); forward rows only, 0 for
               tied ops; the column's sum is the model size on disk
sparse_weight_bytes  weight bytes a kernel reading the sparse format natively moves
               (= weight_bytes for dense ops); the roofline uses it only where the
               device declares support for the op's pattern
lookups        codebook look-ups per execution (one gather per shared weight)
fusible        True where an inference engine can run the op as the epilogue of the op
               just before it (perfmodel.workload.build.fusible_flags: an elementwise or
               norm op fed by the previous kernel, whose output nothing else reads);
               forward rows only. Used by ``predict(..., fusion="epilogue")``
gemm_batch     the GEMM a matrix-engine op runs, as a batch of gemm_m x gemm_n output
gemm_m         matrices (K = macs / (batch M N)); NaN for other ops
gemm_n         (perfmodel.workload.geometry). Backward rows keep the forward's shape
               (their data- and weight-gradient GEMMs are priced as two of it)
=============  ======================================================================

``weight_bytes`` is what a dense kernel moves: zeros of a sparse op are read, a codebook
op reads its indices and codebook. The per-op attrs behind the last six columns are
documented in perfmodel.workload.compressed.

``build_workload`` returns the table inside a :class:`Workload` record that says what it was
built for: the model, the :class:`~perfmodel.workload.job.Job` (phase, batch, seq, dtypes,
optimizer, with defaults filled in), the model's parameters, whether it is a language
model, and the ops with no cost rule.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from perfmodel.workload.job import PHASES, Job, phase_dims

__all__ = ["COLUMNS", "PHASES", "ROW_PHASES", "Workload"]

COLUMNS = ("model", "name", "kind", "layer", "phase", "unit", "dtype", "macs", "flops",
           "params", "weight_bytes", "input_bytes", "output_bytes", "bytes", "intensity",
           "costed", "weight_dtype", "sparsity", "sparse_pattern", "storage_bytes",
           "sparse_weight_bytes", "lookups", "fusible", "gemm_batch", "gemm_m", "gemm_n")
ROW_PHASES = ("inference", "prefill", "decode", "forward", "backward", "optimizer")


@dataclass(frozen=True)
class Workload:
    """A Workload table (``table``, columns COLUMNS) and what it was built for.

    ``job`` has every default resolved (``seq``, ``weight_dtype``, ``kv_dtype`` set;
    canonical dtype names); ``total_params`` counts tied weights once; ``unsupported``
    names the ops with no cost rule (their rows are reported, never priced as zero);
    ``graph`` is the ModelGraph it was built from (for the memory verdict of a prediction).
    """

    table: pd.DataFrame = field(repr=False)
    model: str
    job: Job
    total_params: float
    is_llm: bool = False
    unsupported: tuple[str, ...] = ()
    graph: Any = field(default=None, compare=False, repr=False)  # the ModelGraph built from

    @property
    def dims(self) -> dict[str, int]:
        """Values of the graph symbols B, S, T, L for this job (perfmodel.graph.op)."""
        return phase_dims(self.job.phase, self.job.batch, self.job.seq or 1)
