"""Shared fixtures: tiny devices with round numbers so expected values are worked by hand."""

from __future__ import annotations

import pytest

from perfmodel.hardware.load import device_from_dict


def tiny_device_dict(**over):
    """A device of 100 FLOP/s (tensor fp16) and 10 B/s, efficiency 1, no overhead."""
    d = {
        "name": "tiny", "display_name": "Tiny", "category": "npu",
        "sources": {"HAND": "round numbers for tests"},
        "compute": {"tensor_TFLOPS": {"fp16": {"value": 100e-12, "source": "HAND"}},
                    "vector_TFLOPS": {"fp32": {"value": 10e-12, "source": "HAND"}}},
        "memory": [{"name": "dram", "role": "main",
                    "capacity_GB": {"value": 1e-6, "source": "HAND"},
                    "bandwidth_GBps": {"value": 10e-9, "source": "HAND"}}],
        "power": {"tdp_W": {"value": 2, "source": "HAND"}},
        "efficiency": {"compute": {"value": 1.0, "source": "HAND"},
                       "memory": {"value": 1.0, "source": "HAND"},
                       "launch_overhead_us": {"value": 0, "source": "HAND"}},
    }
    d.update(over)
    return d


@pytest.fixture
def tiny_device():
    return device_from_dict(tiny_device_dict(), "tiny.yaml")
