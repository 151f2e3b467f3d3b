"""Base64 for chunk data: pybase64 (SIMD, ~20x faster) when installed, else the stdlib.

``pip install 'orbit[staging]'`` brings pybase64; without it staging works, more slowly.
"""

from __future__ import annotations

import base64
import binascii
import importlib
from types import ModuleType
from typing import cast


def _load() -> ModuleType | None:
    try:
        return importlib.import_module("pybase64")
    except ImportError:  # pragma: no cover - depends on the installed extras
        return None


_fast = _load()
FAST = _fast is not None
"""Whether the SIMD codec is in use."""


def encode(data: bytes | memoryview) -> str:
    """``data`` as a base64 ``str``."""
    if _fast is not None:
        return cast(str, _fast.b64encode_as_string(data))
    return base64.b64encode(data).decode("ascii")


def decode(text: str) -> bytes:
    """Strict base64 → bytes; raises ``ValueError`` on anything else."""
    try:
        if _fast is not None:
            return cast(bytes, _fast.b64decode(text, validate=True))
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64: {exc}") from None


__all__ = ["FAST", "decode", "encode"]
