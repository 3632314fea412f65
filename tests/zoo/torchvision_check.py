"""Parameters of a torchvision model, counted by instantiating it (when torchvision is
installed), for the zoo tests that compare against it.

Models are built on the meta device (no memory, no init); RegNet's builder computes its
widths with tensor ops, which the meta device cannot run, so it is built on the CPU with
the weight initializers turned into no-ops (uninitialized storage; only shapes matter).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import cache
from unittest import mock

import pytest

_INITS = ("normal_", "uniform_", "ones_", "zeros_", "constant_", "trunc_normal_",
          "kaiming_normal_", "kaiming_uniform_", "xavier_uniform_", "xavier_normal_")


@contextlib.contextmanager
def _no_init(torch) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for fn in _INITS:
            stack.enter_context(mock.patch.object(torch.nn.init, fn, lambda t, *a, **k: t))
        yield


@cache
def torchvision_params(name: str) -> int:
    """sum(p.numel() for p in torchvision.models.<name>().parameters()); skips the test
    where torchvision is not installed."""
    torch = pytest.importorskip("torch")
    tv = pytest.importorskip("torchvision")
    try:
        with torch.device("meta"):
            model = tv.models.get_model(name)
    except NotImplementedError:
        with _no_init(torch):
            model = tv.models.get_model(name)
    return sum(p.numel() for p in model.parameters())


GFLOPS_ROUNDING = 0.0005e9  # torchvision's meta _ops: GFLOPS (= GMACs) to 3 decimals


class ZooRows:
    """The rows a zoo test module checks: (name, module) per model of ``new`` (module ->
    names), their ids, and each model's graph built once."""

    def __init__(self, new: dict) -> None:
        self.rows = [(name, module) for module, names in new.items() for name in names]
        self.ids = [name for name, _ in self.rows]
        self._graphs: dict = {}

    def build(self, name: str):
        if name not in self._graphs:
            self._graphs[name] = next(m.MODELS[name]() for _, m in self.rows
                                      if name in m.MODELS)
        return self._graphs[name]


def check_well_formed(g, module, name: str) -> None:
    """A zoo graph: named, cited, acyclic, every op priced, a 1000-way head that
    ``num_classes`` changes."""
    import networkx as nx

    from perfmodel.graph.costs import is_costed
    assert g.name == name and module.REFERENCE[name]["source"]
    assert nx.is_directed_acyclic_graph(g.graph)
    assert all(is_costed(op.kind) for op in g.ops)
    assert g.ops[-1].outputs[0].shape == ("B", 1000)
    assert module.MODELS[name](num_classes=10).ops[-1].outputs[0].shape == ("B", 10)
