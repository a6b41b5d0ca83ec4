"""The few array operations the shared decode needs, for NumPy arrays and torch tensors alike, so
one implementation of the math (decode.py) runs on the tracker's NumPy arrays without a round trip
through torch and on the training cycle's tensors (differentiable, any device)."""

from __future__ import annotations

from typing import Any, Union

import numpy as np
import torch

Array = Union[np.ndarray, torch.Tensor]


class NumpyOps:
    where = staticmethod(np.where)
    isfinite = staticmethod(np.isfinite)
    maximum = staticmethod(np.maximum)
    minimum = staticmethod(np.minimum)
    sqrt = staticmethod(np.sqrt)
    exp = staticmethod(np.exp)

    @staticmethod
    def asarray(value: Any, like: np.ndarray) -> np.ndarray:
        return np.asarray(value, dtype=like.dtype)

    @staticmethod
    def softmax_first(x: np.ndarray) -> np.ndarray:
        """Softmax over axis 1."""
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    @staticmethod
    def swap_last(x: np.ndarray) -> np.ndarray:
        return np.swapaxes(x, 1, 2)

    @staticmethod
    def all_last(x: np.ndarray) -> np.ndarray:
        return x.all(axis=-1)

    @staticmethod
    def argmax_rows(x: np.ndarray) -> np.ndarray:
        return x.argmax(axis=1)

    @staticmethod
    def take_rows(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        """x [B, N, ...] at idx [B, 1] -> [B, ...]."""
        idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
        return np.take_along_axis(x, idx, axis=1)[:, 0]

    @staticmethod
    def full_like(x: np.ndarray, value: float) -> np.ndarray:
        return np.full_like(x, value)


class TorchOps:
    where = staticmethod(torch.where)
    isfinite = staticmethod(torch.isfinite)
    maximum = staticmethod(torch.maximum)
    minimum = staticmethod(torch.minimum)
    sqrt = staticmethod(torch.sqrt)
    exp = staticmethod(torch.exp)

    @staticmethod
    def asarray(value: Any, like: torch.Tensor) -> torch.Tensor:
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)

    @staticmethod
    def softmax_first(x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(x, dim=1)

    @staticmethod
    def swap_last(x: torch.Tensor) -> torch.Tensor:
        return x.transpose(1, 2)

    @staticmethod
    def all_last(x: torch.Tensor) -> torch.Tensor:
        return x.all(dim=-1)

    @staticmethod
    def argmax_rows(x: torch.Tensor) -> torch.Tensor:
        return x.argmax(dim=1)

    @staticmethod
    def take_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """x [B, N, ...] at idx [B, 1] -> [B, ...]."""
        idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2)).expand(-1, 1, *x.shape[2:])
        return x.gather(1, idx)[:, 0]

    @staticmethod
    def full_like(x: torch.Tensor, value: float) -> torch.Tensor:
        return torch.full_like(x, value)


def ops(x: Array) -> type[NumpyOps] | type[TorchOps]:
    """The operations for `x`'s kind."""
    return TorchOps if isinstance(x, torch.Tensor) else NumpyOps
