"""The Workload table: one row per op and phase. Everything downstream takes this table.

Columns (SI units; FLOP and bytes per execution of the op for the whole batch):

=============  ======================================================================
model          model name
name           op name (scoped like the reference implementation, e.g. layer3.2.conv1)
kind           op kind (perfmodel.graph.kinds.OpKind value)
layer          the builder scope the op belongs to
phase          inference | prefill | decode | forward | backward | optimizer
unit           tensor | vector | none: which compute unit the op wants
dtype          compute dtype
macs           multiply-accumulates
flops          floating-point (or integer) operations; 2 x macs for MAC ops
params         trainable parameters owned by the op (tied weights count once)
weight_bytes   bytes of weights read
input_bytes    bytes of activations / KV cache read
output_bytes   bytes written
bytes          weight_bytes + input_bytes + output_bytes
intensity      flops / bytes (FLOP/byte; inf where nothing is moved)
costed         False where no cost rule exists: those rows are reported, never zeroed
=============  ======================================================================

``df.attrs`` carries the request: model, batch, seq, phase, dtype, weight_dtype,
act_dtype, kv_dtype, dims (the symbol values), total_params, is_llm, optimizer, and
unsupported (op names with no cost rule).
"""

COLUMNS = ("model", "name", "kind", "layer", "phase", "unit", "dtype", "macs", "flops",
           "params", "weight_bytes", "input_bytes", "output_bytes", "bytes", "intensity",
           "costed")
PHASES = ("inference", "prefill", "decode", "train")
ROW_PHASES = ("inference", "prefill", "decode", "forward", "backward", "optimizer")

__all__ = ["COLUMNS", "PHASES", "ROW_PHASES"]
