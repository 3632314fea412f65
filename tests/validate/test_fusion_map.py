"""The framework -> fusion mode map of perfmodel.validate.compare."""

from __future__ import annotations

import pytest

from perfmodel.validate.compare import fusion_of


@pytest.mark.parametrize("framework,mode", [
    ("TensorRT-LLM", "epilogue"),
    ("vLLM", "epilogue"),
    ("Deepspeed-MII", "epilogue"),
    ("Paddle-TRT (PaddlePaddle NGC) [FP16 Inference Latency]", "epilogue"),
    ("PaddlePaddle NGC [TF32 Inference Latency]", "none"),
    ("PyTorch (pytorch-21.03 NGC container) [FP32 Inference Latency]", "none"),
    ("TensorFlow 1.x NGC [TF32 Inference Latency + XLA]", "none"),
    ("MXNet NGC", "none"),
    ("llama.cpp", "none"),
    ("", "none"),
])
def test_fusion_of(framework, mode):
    assert fusion_of(framework) == mode
