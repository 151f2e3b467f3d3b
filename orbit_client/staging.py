"""Moved to :mod:`orbit_plugins.staging.client`; this alias keeps old imports working."""

from orbit_plugins.staging.client import (
    DEFAULT_CHUNK,
    DEFAULT_PARALLEL,
    Progress,
    download,
    sha256_of,
    upload,
)
from orbit_plugins.staging.codec import decode as b64decode
from orbit_plugins.staging.codec import encode as b64encode
from orbit_plugins.staging.ranges import Range, chunks
from orbit_plugins.staging.ranges import add_range as merge
from orbit_plugins.staging.ranges import missing_ranges as gaps_of
from orbit_plugins.staging.schema import MiB

__all__ = [
    "DEFAULT_CHUNK",
    "DEFAULT_PARALLEL",
    "MiB",
    "Progress",
    "Range",
    "b64decode",
    "b64encode",
    "chunks",
    "download",
    "gaps_of",
    "merge",
    "sha256_of",
    "upload",
]
