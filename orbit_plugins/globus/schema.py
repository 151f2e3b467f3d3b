"""Wire models of the ``globus`` plugin (pydantic only: clients import this freely).

Collections are Globus UUIDs; the literal ``"local"`` names the endpoint's own collection.
Tokens are :class:`~pydantic.SecretStr`: they never appear in reprs, logs or errors.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

SyncLevel = Literal["exists", "size", "mtime", "checksum"]
TERMINAL = frozenset({"SUCCEEDED", "FAILED"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GlobusSettings(_Model):
    """Endpoint-side settings (``plugin_settings.globus``)."""

    local_collection: str | None = Field(
        default=None,
        description="Collection that 'local' stands for (else env ORBIT_GLOBUS_COLLECTION).",
    )
    transfer_base_url: str | None = Field(
        default=None, description="Transfer API base URL (default: globus-sdk's; for tests)."
    )
    max_retries: int | None = Field(
        default=None, ge=0, description="globus-sdk retries per call (default: the SDK's)."
    )
    poll_interval: float = Field(
        default=10.0, gt=0, description="Seconds between polls of unfinished tasks."
    )


class RegisterArgs(_Model):
    """Credentials of the caller: an access token, or a refresh token and client id."""

    access_token: SecretStr | None = None
    refresh_token: SecretStr | None = None
    client_id: str | None = None
    local_collection: str | None = Field(
        default=None, description="Override of the endpoint's collection for 'local'."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> RegisterArgs:
        if (self.access_token is None) == (self.refresh_token is None):
            raise ValueError("give either access_token or refresh_token (with client_id)")
        if self.refresh_token is not None and not self.client_id:
            raise ValueError("refresh_token needs client_id")
        return self


class Registered(_Model):
    user: str
    auth: Literal["access_token", "refresh_token"]
    local_collection: str | None


class Item(_Model):
    source: str
    destination: str
    recursive: bool = False


class SubmitArgs(_Model):
    source: str = Field(description="Source collection UUID or 'local'.")
    destination: str = Field(description="Destination collection UUID or 'local'.")
    items: list[Item] = Field(min_length=1)
    label: str | None = None
    sync_level: SyncLevel | None = None


class TaskRef(_Model):
    task_id: str


class WaitArgs(TaskRef):
    timeout: float = Field(default=60.0, gt=0, le=3600)
    polling_interval: float = Field(default=5.0, gt=0, le=600)


class ListTasksArgs(_Model):
    limit: int = Field(default=100, ge=1, le=1000)


class LsArgs(_Model):
    collection: str
    path: str = "/~/"


class MkdirArgs(_Model):
    collection: str
    path: str


class RenameArgs(_Model):
    collection: str
    oldpath: str
    newpath: str


class DeleteArgs(_Model):
    collection: str
    paths: list[str] = Field(min_length=1)
    recursive: bool = False
    label: str | None = None


class SearchArgs(_Model):
    filter_text: str
    limit: int = Field(default=25, ge=1, le=100)


class EndpointRef(_Model):
    endpoint_id: str


class Submitted(_Model):
    task_id: str
    submission_id: str | None
    status: str


class Task(_Model):
    """The fields of a Globus task document that Orbit reports (``transfer_status`` too)."""

    task_id: str
    status: str
    type: str | None = None
    label: str | None = None
    nice_status: str | None = None
    bytes_transferred: int = 0
    files_transferred: int = 0
    source_endpoint_id: str | None = None
    destination_endpoint_id: str | None = None
    request_time: str | None = None
    completion_time: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Task:
        return cls.model_validate({k: doc.get(k) for k in cls.model_fields if k in doc})


class Waited(_Model):
    done: bool
    task: Task


class TaskList(_Model):
    tasks: list[Task]


class Listing(_Model):
    collection: str
    path: str
    entries: list[dict[str, Any]]


class Outcome(_Model):
    code: str
    message: str


class Documents(_Model):
    items: list[dict[str, Any]]
