"""CI runs the importer tests, never skips them: .ci/run sets PERFMODEL_CI=1 and installs the
onnx and torch extras, so their absence there is a failure, not a skip."""

from __future__ import annotations

import importlib
import os

import pytest


@pytest.mark.parametrize("module", ["onnx", "torch", "torchvision"])
def test_ci_has_the_importer_extras(module):
    if os.environ.get("PERFMODEL_CI") != "1":
        pytest.skip("only enforced in CI (.ci/run sets PERFMODEL_CI=1)")
    importlib.import_module(module)
