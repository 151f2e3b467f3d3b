"""Wire models of the ``staging`` plugin (pydantic only: clients import this freely).

Paths are absolute or ``~/…`` on the endpoint host. File data travels base64-encoded
in chunks (``data``); offsets and sizes are raw bytes. Byte ranges are ``[start, end)``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

MiB = 1024 * 1024
DEFAULT_CHUNK = MiB
MAX_CHUNK = 2 * MiB
"""Largest raw chunk accepted or served (≈2.7 MiB as base64 JSON: under the 4 MiB cap)."""

EntryType = Literal["file", "dir", "link", "other"]
Range = tuple[int, int]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
"""A SHA-256 digest, lower-case hex."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StagingSettings(_Model):
    """Endpoint-side settings (``plugin_settings.staging``)."""

    roots: list[str] | None = Field(
        default=None,
        description="Directories callers may touch (default: $HOME and the system temp dir).",
    )
    max_chunk: int = Field(default=MAX_CHUNK, ge=4096, le=MAX_CHUNK)
    upload_ttl: float = Field(
        default=7 * 86400, gt=0, description="Seconds an idle upload session is kept."
    )
    progress_interval: float = Field(
        default=1.0, ge=0, description="Seconds between ``progress`` events of one upload."
    )


# --------------------------------------------------------------------------- arguments


class PathArgs(_Model):
    path: str = Field(description="Absolute or ~/ path on the endpoint host.")


class StatArgs(PathArgs):
    checksum: bool = Field(default=False, description="Also compute the file's SHA-256.")


class MkdirArgs(PathArgs):
    parents: bool = Field(default=True, description="Create missing parent directories.")


class RemoveArgs(PathArgs):
    recursive: bool = Field(default=False, description="Remove a non-empty directory tree.")


class PutBeginArgs(PathArgs):
    size: int = Field(ge=0, description="Size of the whole file in bytes.")
    sha256: Sha256 | None = Field(
        default=None,
        description="SHA-256 of the whole file; may instead be given to put_commit, so the"
        " client can hash while it sends.",
    )
    source: str | None = Field(
        default=None,
        max_length=128,
        description="Opaque identity of the client's source (e.g. a hash of its path, size and"
        " mtime): resume matches on it when sha256 is not given here.",
    )
    overwrite: bool = Field(default=False, description="Replace an existing file.")
    resume: bool = Field(
        default=True,
        description="Continue an open upload of the same content (same sha256, or same source)"
        " to the same path.",
    )


class PutChunkArgs(_Model):
    upload_id: str
    offset: int = Field(ge=0)
    data: str = Field(description="The chunk, base64.")


class UploadRef(_Model):
    upload_id: str


class PutCommitArgs(UploadRef):
    sha256: Sha256 | None = Field(
        default=None,
        description="SHA-256 of the whole file, when put_begin did not give it (must match"
        " when it did).",
    )


class GetChunkArgs(PathArgs):
    offset: int = Field(ge=0)
    size: int = Field(gt=0, description="Bytes wanted (at most the endpoint's max_chunk).")
    download_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="Client-chosen id of the download this chunk belongs to: the endpoint"
        " then emits ``progress`` events for it (direction ``get``).",
    )
    want: int | None = Field(
        default=None,
        ge=0,
        description="Bytes this download still needs from the endpoint (the file size for a"
        " fresh download, less for a resumed one): the ``total`` of its progress events.",
    )


# --------------------------------------------------------------------------- results


class Entry(_Model):
    name: str
    type: EntryType
    size: int
    mtime: float


class Listing(_Model):
    path: str
    entries: list[Entry]


class StatResult(_Model):
    path: str
    type: EntryType
    size: int
    mtime: float
    sha256: str | None = None


class PathResult(_Model):
    path: str


class Upload(_Model):
    """An upload session (persisted on the endpoint until committed, aborted or expired)."""

    upload_id: str
    user: str
    path: str
    size: int
    sha256: str | None = Field(description="None until put_commit gives it.")
    source: str | None = None
    overwrite: bool
    received: list[Range] = Field(description="Confirmed byte ranges, merged and sorted.")
    received_bytes: int
    max_chunk: int
    created: float
    updated: float


class ChunkAck(_Model):
    upload_id: str
    offset: int
    size: int
    received_bytes: int


class PutResult(_Model):
    path: str
    size: int
    sha256: str


class Transferred(PutResult):
    """What a whole-file upload or download by the client ended with."""

    resumed: int = Field(description="Bytes kept from an interrupted earlier try (0: fresh).")


class Chunk(_Model):
    offset: int
    size: int
    data: str = Field(description="base64")
    eof: bool


class UploadList(_Model):
    uploads: list[Upload]
