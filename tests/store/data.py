"""Deterministic test inputs: the same seed gives the same bytes on every machine."""

from __future__ import annotations

import random

KiB = 1024
MiB = 1024 * KiB


def random_bytes(n: int, seed: int = 0) -> bytes:
    """Incompressible bytes (like float weights)."""
    return random.Random(seed).randbytes(n)


def text_bytes(n: int, seed: int = 0) -> bytes:
    """Log-like text: compresses ~5x, yet varied enough to chunk like real text."""
    rng = random.Random(seed)
    parts: list[str] = []
    total = i = 0
    while total < n:
        line = (
            f"{i:08d} step={i * 7} loss={rng.random():.6f} "
            f"lr={rng.choice(['1e-4', '3e-4', '1e-3'])} split={rng.choice(['train', 'eval', 'warmup'])}\n"
        )
        parts.append(line)
        total += len(line)
        i += 1
    return "".join(parts).encode()[:n]
