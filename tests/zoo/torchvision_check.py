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
