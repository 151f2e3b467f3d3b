"""Protocol version: the ``v`` field of every body and the ``x-orbit-v`` header."""

from typing import Final

PROTOCOL_VERSION: Final = 1

__all__ = ["PROTOCOL_VERSION"]
