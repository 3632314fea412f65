"""Citations several zoo modules share."""

from __future__ import annotations

__all__ = ["TORCHVISION_DOCS"]

# torchvision's published parameters and GFLOPS (= GMACs, 3 decimals) per weights entry
TORCHVISION_DOCS = ('torchvision docs, "Table of all available classification weights" '
                    "(docs.pytorch.org/vision/stable/models.html)")
