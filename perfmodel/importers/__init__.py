"""Importers: outside model descriptions -> perfmodel configs and graphs.

``hf_config`` reads a Hugging Face ``config.json`` with the standard library only. Importers
that need optional extras (ONNX, torch.fx) guard their imports inside their own modules.
"""

from perfmodel.importers.hf_config import SUPPORTED_MODEL_TYPES, load_hf_config

__all__ = ["SUPPORTED_MODEL_TYPES", "load_hf_config"]
