"""Module-level factories for ``from_factory`` / ``perfmodel roofline pkg.module:factory``
tests: each returns a fresh torch module (torch is imported by the factories, so this file
imports without torch)."""

from __future__ import annotations

from typing import Any


def tiny_cnn() -> Any:
    """conv 3->8 (3x3, pad 1) + BN + ReLU + global average pool + linear 8->10."""
    from torch import nn
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))


def token_lstm() -> Any:
    """Embedding 100x16 -> LSTM 16->32 (batch first) -> linear 32->100, on token ids."""
    from torch import nn

    class TokenLSTM(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed, self.head = nn.Embedding(100, 16), nn.Linear(32, 100)
            self.rnn = nn.LSTM(16, 32, batch_first=True)

        def forward(self, tokens: Any) -> Any:
            return self.head(self.rnn(self.embed(tokens))[0])

    return TokenLSTM()


def raises() -> Any:
    raise RuntimeError("no weights here")


def not_a_module() -> Any:
    return 42


NOT_CALLABLE = 3
