"""Compression strategies as pure ModelGraph -> ModelGraph transforms.

Each family has its module (quantize, prune, share, lowrank, distill, substitute,
gradient); ``registry`` maps the ``--strategy`` mini-language onto them. Transforms change
shapes (structured pruning, low rank, substitutions) or record per-op attributes (dtypes,
sparsity, codebooks: perfmodel.workload.compressed) that the workload and the roofline
then price, honestly for the device at hand (perfmodel.analytic.compression).
"""

from perfmodel.compress.registry import STRATEGIES, Strategy, apply_strategy, parse_strategy

__all__ = ["STRATEGIES", "Strategy", "apply_strategy", "parse_strategy"]
