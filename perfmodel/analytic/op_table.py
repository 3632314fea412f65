"""A workload table as numpy columns, read once and priced on many devices.

``roofline.predict`` prices one workload on one device; a sweep prices the same workload on
dozens of devices and thousands of spec variants. Reading a pandas column costs more than
the arithmetic done on it, so the pricing core (``roofline.price``) reads an ``OpTable``:
the columns it needs as numpy arrays, the (unit, dtype) groups found once. It answers
``name in t``, ``t[name]`` and ``len(t)`` (rows) as a DataFrame does, so the helpers that
take either (``compression.execution``) need no second version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["OpTable", "FrameLike"]

# the columns the roofline reads; compression columns are optional (older tables lack them)
_FLOAT = ("macs", "flops", "weight_bytes", "input_bytes", "output_bytes", "bytes",
          "gemm_batch", "gemm_m", "gemm_n", "sparsity", "sparse_weight_bytes", "lookups")
_TEXT = ("unit", "dtype", "sparse_pattern", "kind", "phase")


@dataclass(frozen=True)
class OpTable:
    """Numpy columns of a workload table (``Workload.table``) and its (unit, dtype) groups:
    ``groups[(unit, dtype)]`` holds the row indices of the ops of that unit and dtype, in
    the order the table first shows them."""

    columns: Mapping[str, np.ndarray] = field(repr=False)
    rows: int
    groups: Mapping[tuple[str, str], np.ndarray] = field(repr=False)

    @classmethod
    def of(cls, table: pd.DataFrame) -> OpTable:
        cols: dict[str, np.ndarray] = {}
        for c in _FLOAT:
            if c in table:
                cols[c] = table[c].to_numpy(float)
        for c in _TEXT:
            if c in table:
                cols[c] = table[c].to_numpy(dtype=object)
        if "fusible" in table:
            cols["fusible"] = table["fusible"].fillna(False).to_numpy(dtype=bool)
        groups = table.groupby(["unit", "dtype"], sort=False).indices if len(table) else {}
        return cls(cols, len(table), {k: np.asarray(v) for k, v in groups.items()})

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __len__(self) -> int:
        return self.rows


FrameLike = pd.DataFrame | OpTable  # what the pricing helpers read columns from
