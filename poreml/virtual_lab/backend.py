"""A minimal array namespace so one copy of the physics runs on numpy arrays or torch tensors.

The physics (:mod:`poreml.virtual_lab.physics`) only needs the operations listed in spec
section 10: exp, log, log1p, sqrt, abs, where, minimum, maximum, clip, integer indexing of the
route tables and array conversion. :func:`backend_for` picks the namespace from the inputs:
torch when any input is a ``torch.Tensor`` (dtype and device then come from the first floating
tensor), numpy otherwise. torch is never imported here: a tensor can only exist when the caller
has imported torch already, so numpy users do not pay for it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Backend", "NumpyBackend", "TorchBackend", "backend_for", "is_tensor"]


def is_tensor(x: object) -> bool:
    """Whether ``x`` is a torch tensor (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


class Backend:
    """Elementwise operations used by the physics; scalars and arrays mix freely.

    Attributes:
        name: ``"numpy"`` or ``"torch"``.
        dtype: floating dtype of the arrays the backend creates.
        exp, log, log1p, sqrt, abs: elementwise functions of one array.
    """

    name: str
    dtype: Any
    exp: Callable[[Any], Any]
    log: Callable[[Any], Any]
    log1p: Callable[[Any], Any]
    sqrt: Callable[[Any], Any]
    abs: Callable[[Any], Any]

    def where(self, cond: Any, a: Any, b: Any) -> Any:  # pragma: no cover - interface
        """``a`` where ``cond`` else ``b``, elementwise."""
        raise NotImplementedError

    def minimum(self, a: Any, b: Any) -> Any:  # pragma: no cover - interface
        """Elementwise minimum (either argument may be a Python number)."""
        raise NotImplementedError

    def maximum(self, a: Any, b: Any) -> Any:  # pragma: no cover - interface
        """Elementwise maximum (either argument may be a Python number)."""
        raise NotImplementedError

    def clip(self, x: Any, lo: Any, hi: Any) -> Any:  # pragma: no cover - interface
        """``min(max(x, lo), hi)`` elementwise (the lower bound first, as in spec R3)."""
        raise NotImplementedError

    def asarray(self, x: Any) -> Any:  # pragma: no cover - interface
        """Convert ``x`` to a floating array of the backend's dtype (and device)."""
        raise NotImplementedError

    def asindex(self, x: Any) -> Any:  # pragma: no cover - interface
        """Convert ``x`` to an integer index array (route codes)."""
        raise NotImplementedError

    def broadcast(self, *xs: Any) -> list[Any]:  # pragma: no cover - interface
        """Broadcast arrays to a common shape."""
        raise NotImplementedError

    def take(self, values: Sequence[float], index: Any) -> Any:  # pragma: no cover
        """Look up ``values[index]`` elementwise (route-table lookup)."""
        raise NotImplementedError

    def take_rows(self, table: Sequence[Sequence[float]], index: Any) -> list[Any]:
        """Look up several route tables at once: ``[row[index] for row in table]``."""
        return [self.take(row, index) for row in table]


class NumpyBackend(Backend):
    """numpy float64 implementation."""

    name = "numpy"
    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    log1p = staticmethod(np.log1p)
    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)

    def __init__(self, dtype: Any = np.float64) -> None:
        self.dtype = np.dtype(dtype)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return np.where(cond, a, b)

    def minimum(self, a: Any, b: Any) -> Any:
        return np.minimum(a, b)

    def maximum(self, a: Any, b: Any) -> Any:
        return np.maximum(a, b)

    def clip(self, x: Any, lo: Any, hi: Any) -> Any:
        return np.minimum(np.maximum(x, lo), hi)

    def asarray(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=self.dtype)

    def asindex(self, x: Any) -> np.ndarray:
        return np.asarray(x, dtype=np.intp)

    def broadcast(self, *xs: Any) -> list[Any]:
        return list(np.broadcast_arrays(*xs))

    def take(self, values: Sequence[float], index: Any) -> np.ndarray:
        return np.take(np.asarray(values, dtype=self.dtype), index)

    def take_rows(self, table: Sequence[Sequence[float]], index: Any) -> list[Any]:
        # One gather for all tables; each result row is contiguous.
        return list(np.take(np.asarray(table, dtype=self.dtype), index, axis=1))


class TorchBackend(Backend):
    """torch implementation for a given floating dtype and device (autograd-friendly)."""

    name = "torch"

    def __init__(self, dtype: Any, device: Any) -> None:
        import torch

        self._torch = torch
        self.dtype = dtype
        self.device = device
        self.exp = torch.exp
        self.log = torch.log
        self.log1p = torch.log1p
        self.sqrt = torch.sqrt
        self.abs = torch.abs

    def _t(self, x: Any) -> Any:
        if isinstance(x, self._torch.Tensor):
            return x
        return self._torch.as_tensor(x, dtype=self.dtype, device=self.device)

    def where(self, cond: Any, a: Any, b: Any) -> Any:
        return self._torch.where(cond, self._t(a), self._t(b))

    def minimum(self, a: Any, b: Any) -> Any:
        if not isinstance(b, self._torch.Tensor):
            return self._torch.clamp(a, max=b)
        if not isinstance(a, self._torch.Tensor):
            return self._torch.clamp(b, max=a)
        return self._torch.minimum(a, b)

    def maximum(self, a: Any, b: Any) -> Any:
        if not isinstance(b, self._torch.Tensor):
            return self._torch.clamp(a, min=b)
        if not isinstance(a, self._torch.Tensor):
            return self._torch.clamp(b, min=a)
        return self._torch.maximum(a, b)

    def clip(self, x: Any, lo: Any, hi: Any) -> Any:
        return self.minimum(self.maximum(x, lo), hi)

    def asarray(self, x: Any) -> Any:
        torch = self._torch
        if isinstance(x, torch.Tensor):
            return x.to(dtype=self.dtype, device=self.device)
        return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=self.dtype).to(self.device)

    def asindex(self, x: Any) -> Any:
        torch = self._torch
        if isinstance(x, torch.Tensor):
            return x.to(dtype=torch.long, device=self.device)
        return torch.as_tensor(np.asarray(x, dtype=np.int64), device=self.device)

    def broadcast(self, *xs: Any) -> list[Any]:
        return list(self._torch.broadcast_tensors(*xs))

    def take(self, values: Sequence[float], index: Any) -> Any:
        table = self._torch.as_tensor(list(values), dtype=self.dtype, device=self.device)
        return table[index]

    def take_rows(self, table: Sequence[Sequence[float]], index: Any) -> list[Any]:
        torch = self._torch
        if any(isinstance(v, torch.Tensor) for r in table for v in r):
            # constants that are tensors themselves (being calibrated): keep their gradients
            rows = torch.stack([torch.stack([self._t(v) for v in r]) for r in table])
        else:
            rows = torch.as_tensor([list(r) for r in table], dtype=self.dtype, device=self.device)
        return list(rows[:, index].unbind(0))


def backend_for(values: Iterable[Any]) -> Backend:
    """Pick the backend for a set of inputs.

    Args:
        values: the input arrays / tensors / scalars.

    Returns:
        A :class:`TorchBackend` when any value is a tensor (dtype and device of the first
        floating tensor; float64 on the device of the first tensor when none is floating),
        else a :class:`NumpyBackend` (float64).
    """
    tensors = [v for v in values if is_tensor(v)]
    if not tensors:
        return NumpyBackend()
    import torch

    floating = [t for t in tensors if t.is_floating_point()]
    if floating:
        return TorchBackend(floating[0].dtype, floating[0].device)
    return TorchBackend(torch.float64, tensors[0].device)
