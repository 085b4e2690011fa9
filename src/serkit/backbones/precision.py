"""Arithmetic precision of a backbone's forward pass on CPU.

``bf16`` runs the encoder's matrix products in bfloat16 under ``torch.autocast`` (the front end —
Whisper's log-mel — and the pooling stay float32). It pays off only on processors that compute
bfloat16 natively (AVX512-BF16 or AMX: about 2.5x faster than float32 for whisper-tiny.en on this
project's 2-core machine); elsewhere emulated bfloat16 is slower than float32, so ``auto`` picks
float32 there. ``bench/speed.py`` measures the speed and the agreement with float32.
"""
from __future__ import annotations

import contextlib
from typing import Literal

import torch

__all__ = ["Precision", "cpu_has_native_bf16", "resolve_precision", "autocast"]

Precision = Literal["auto", "fp32", "bf16"]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), so bf16 autocast pays off."""
    probes = [getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return any(bool(p()) for p in probes if callable(p))


def resolve_precision(precision: str, device: str = "cpu") -> str:
    """``auto`` → ``bf16`` on a CPU with native bfloat16, else ``fp32``; other values are checked."""
    if precision not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'fp32' or 'bf16', got {precision!r}")
    if precision == "auto":
        return "bf16" if str(device).startswith("cpu") and cpu_has_native_bf16() else "fp32"
    return precision


def autocast(precision: str, device: str = "cpu"):
    """A context manager running the enclosed forward pass at ``precision`` (resolved)."""
    if precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda" if str(device).startswith("cuda") else "cpu",
                          dtype=torch.bfloat16)
