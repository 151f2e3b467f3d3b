"""The ``globus`` plugin: drive Globus Transfer for each caller with the caller's own token.

No bytes pass through Orbit: Globus moves data collection-to-collection. Each user first
calls ``register`` (access token, or refresh token + client id); the credentials live in
this process's memory only. A background poller follows unfinished tasks and emits
``transfer_status`` events. globus-sdk is imported in ``setup``: when it is missing the
plugin is reported ``UNAVAILABLE`` and the endpoint runs on.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from orbit_plugins.base import Call, Plugin, PluginContext, operation
from orbit_plugins.periodic import Periodic
from orbit_protocol import (
    Conflict,
    InvalidArgs,
    NotAuthorized,
    NotFound,
    OrbitError,
    Unavailable,
)

from .schema import (
    TERMINAL,
    DeleteArgs,
    Documents,
    EndpointRef,
    GlobusSettings,
    Listing,
    ListTasksArgs,
    LsArgs,
    MkdirArgs,
    Outcome,
    RegisterArgs,
    Registered,
    RenameArgs,
    SearchArgs,
    SubmitArgs,
    Submitted,
    Task,
    TaskList,
    TaskRef,
    WaitArgs,
    Waited,
)

if TYPE_CHECKING:
    from globus_sdk import TransferClient

T = TypeVar("T")
LOCAL_ENV = "ORBIT_GLOBUS_COLLECTION"


@dataclass
class _Session:
    """One user's Globus client; ``watched`` maps unfinished task ids to their last view."""

    client: TransferClient
    auth: Literal["access_token", "refresh_token"]
    local_collection: str | None
    watched: dict[str, Task] = field(default_factory=dict)


def translate(exc: Exception) -> OrbitError:
    """A globus-sdk exception as the Orbit error a caller can act on."""
    import globus_sdk

    if isinstance(exc, globus_sdk.GlobusAPIError):
        consent = exc.info.consent_required
        if consent:
            scopes = list(consent.required_scopes or [])
            return NotAuthorized(
                "Globus needs your consent for this collection: log in again requesting"
                f" scope(s) {', '.join(scopes)}, then call globus.register",
                {"globus_code": "ConsentRequired", "required_scopes": scopes},
            )
        details = {"globus_code": exc.code, "http_status": exc.http_status}
        message = f"Globus: {exc.message or exc.code} (HTTP {exc.http_status})"
        if exc.http_status in (401, 403):
            return NotAuthorized(message, details)
        if exc.http_status == 404:
            return NotFound(message, details)
        if exc.http_status == 409:
            return Conflict(message, details)
        return Unavailable(message, details)
    if isinstance(exc, globus_sdk.NetworkError):
        return Unavailable(f"cannot reach Globus: {type(exc).__name__}")
    raise exc


class GlobusPlugin(Plugin):
    """Globus Transfer with per-user tokens held in memory; events for task progress."""

    name = "globus"
    version = "0.1.0"
    description = "Globus Transfer: submit, follow and cancel transfers; browse collections."
    settings_model = GlobusSettings

    def __init__(self, settings: dict[str, object] | None = None) -> None:
        super().__init__(settings)
        self._sessions: dict[str, _Session] = {}
        self._lock = threading.Lock()
        self._poller = Periodic("globus-poller", lambda: self.cfg.poll_interval, self._poll_once)

    @property
    def cfg(self) -> GlobusSettings:
        if not isinstance(self.settings, GlobusSettings):
            raise TypeError("globus settings were not validated")
        return self.settings

    async def setup(self, ctx: PluginContext) -> None:
        """Refuse to come up without globus-sdk (the endpoint reports UNAVAILABLE)."""
        try:
            importlib.import_module("globus_sdk")
        except ImportError:
            raise Unavailable(
                "globus-sdk is not installed on this endpoint (pip install 'orbit[globus]')"
            ) from None
        await super().setup(ctx)

    async def start(self) -> None:
        self._poller.start(self.ctx.logger)

    async def stop(self) -> None:
        await self._poller.stop()
        with self._lock:
            self._sessions.clear()  # forget every credential

    # ------------------------------------------------------------------ credentials

    def _make_client(self, args: RegisterArgs) -> TransferClient:
        """A TransferClient with the caller's credentials.

        A refresh token (native app ``client_id``) goes to a ``RefreshTokenAuthorizer``: it
        is exchanged for an access token here, at once (a refused one fails ``register``),
        and again whenever that token is about to expire or Transfer answers 401. Auth's
        URL follows globus-sdk's settings (``GLOBUS_SDK_ENVIRONMENT``,
        ``GLOBUS_SDK_SERVICE_URL_AUTH``).
        """
        import globus_sdk
        from globus_sdk.transport import RetryConfig

        retry = (
            None if self.cfg.max_retries is None else RetryConfig(max_retries=self.cfg.max_retries)
        )
        authorizer: globus_sdk.authorizers.GlobusAuthorizer
        if args.access_token is not None:
            authorizer = globus_sdk.AccessTokenAuthorizer(args.access_token.get_secret_value())
        else:
            assert args.refresh_token is not None and args.client_id is not None
            auth_client = globus_sdk.NativeAppAuthClient(args.client_id, retry_config=retry)
            try:  # the authorizer makes its first grant as it is created
                renewing = globus_sdk.RefreshTokenAuthorizer(
                    args.refresh_token.get_secret_value(), auth_client
                )
                renewing.ensure_valid_token()
            except globus_sdk.GlobusAPIError as exc:
                raise NotAuthorized(
                    f"Globus Auth refused the refresh token (HTTP {exc.http_status}"
                    f" {exc.code}): log in again for a new one",
                    {"globus_code": exc.code, "http_status": exc.http_status},
                ) from None
            authorizer = renewing
        return globus_sdk.TransferClient(
            authorizer=authorizer, base_url=self.cfg.transfer_base_url, retry_config=retry
        )

    @operation(idempotent=True, journal=False)  # tokens never reach the disk
    def register(self, args: RegisterArgs, call: Call) -> Registered:
        """Hand the endpoint your Globus credentials (memory only; re-register to replace)."""
        try:
            client = self._make_client(args)
        except OrbitError:
            raise
        except Exception as exc:
            raise translate(exc) from None
        auth: Literal["access_token", "refresh_token"] = (
            "access_token" if args.access_token is not None else "refresh_token"
        )
        with self._lock:
            old = self._sessions.get(call.user)
            watched = old.watched if old else {}
            self._sessions[call.user] = _Session(client, auth, args.local_collection, watched)
        return Registered(user=call.user, auth=auth, local_collection=self._local(call.user))

    @operation
    def unregister(self, call: Call) -> Registered:
        """Forget your credentials on this endpoint."""
        with self._lock:
            session = self._sessions.pop(call.user, None)
        if session is None:
            raise NotFound(f"no Globus credentials registered for {call.user!r}")
        return Registered(user=call.user, auth=session.auth, local_collection=None)

    def _session(self, call: Call) -> _Session:
        with self._lock:
            session = self._sessions.get(call.user)
        if session is None:
            raise NotAuthorized(
                f"no Globus credentials for {call.user!r} on this endpoint: call globus.register"
                " with an access token (or refresh token + client id) first"
            )
        return session

    def _local(self, user: str) -> str | None:
        session = self._sessions.get(user)
        override = session.local_collection if session else None
        return override or self.cfg.local_collection or os.environ.get(LOCAL_ENV)

    def _collection(self, name: str, call: Call) -> str:
        if name != "local":
            return name
        local = self._local(call.user)
        if not local:
            raise InvalidArgs(
                "'local' has no meaning here: this endpoint has no Globus collection configured"
                f" (plugin setting local_collection or env {LOCAL_ENV})"
            )
        return local

    def _sdk(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except Exception as exc:
            raise translate(exc) from None

    # ------------------------------------------------------------------ tasks

    @operation
    def submit_transfer(self, args: SubmitArgs, call: Call) -> Submitted:
        """Submit a transfer between two collections; returns the Globus task id."""
        import globus_sdk

        session = self._session(call)
        options: dict[str, Any] = {}
        if args.label:
            options["label"] = args.label
        if args.sync_level:
            options["sync_level"] = args.sync_level
        data = globus_sdk.TransferData(
            self._collection(args.source, call), self._collection(args.destination, call), **options
        )
        for item in args.items:
            data.add_item(item.source, item.destination, recursive=item.recursive)
        result = self._sdk(session.client.submit_transfer, data)
        task_id = str(result["task_id"])
        session.watched[task_id] = Task(task_id=task_id, status="ACTIVE", label=args.label)
        return Submitted(
            task_id=task_id, submission_id=result.get("submission_id"), status=result["code"]
        )

    @operation(idempotent=True)
    def get_task(self, args: TaskRef, call: Call) -> Task:
        """The current state of a task (status, bytes and files transferred)."""
        session = self._session(call)
        return self._observe(call.user, session, args.task_id)

    @operation(idempotent=True)
    async def task_wait(self, args: WaitArgs, call: Call) -> Waited:
        """Poll a task until it finishes or ``timeout`` (bounded by the call's deadline) passes."""
        session = self._session(call)
        until = time.time() + args.timeout
        if call.deadline is not None:
            until = min(until, call.deadline - 1.0)
        while True:
            task = await asyncio.to_thread(self._observe, call.user, session, args.task_id)
            left = until - time.time()
            if task.status in TERMINAL or left <= 0:
                return Waited(done=task.status in TERMINAL, task=task)
            call.raise_if_cancelled()
            await asyncio.sleep(min(args.polling_interval, left))

    @operation
    def cancel_task(self, args: TaskRef, call: Call) -> Outcome:
        """Cancel a task."""
        session = self._session(call)
        result = self._sdk(session.client.cancel_task, args.task_id)
        return Outcome(code=result["code"], message=result.get("message", ""))

    @operation(idempotent=True)
    def list_tasks(self, args: ListTasksArgs, call: Call) -> TaskList:
        """Your most recent Globus tasks."""
        session = self._session(call)
        found = self._sdk(lambda: list(session.client.task_list(limit=args.limit)))
        return TaskList(tasks=[Task.from_doc(dict(doc)) for doc in found])

    # ------------------------------------------------------------------ collections

    @operation(idempotent=True)
    def ls(self, args: LsArgs, call: Call) -> Listing:
        """List a directory of a collection."""
        session = self._session(call)
        collection = self._collection(args.collection, call)
        response = self._sdk(session.client.operation_ls, collection, path=args.path)
        entries = [{k: v for k, v in dict(e).items() if k != "DATA_TYPE"} for e in response]
        return Listing(collection=collection, path=response.get("path", args.path), entries=entries)

    @operation
    def mkdir(self, args: MkdirArgs, call: Call) -> Outcome:
        """Create a directory on a collection."""
        session = self._session(call)
        collection = self._collection(args.collection, call)
        result = self._sdk(session.client.operation_mkdir, collection, args.path)
        return Outcome(code=result["code"], message=result.get("message", ""))

    @operation
    def rename(self, args: RenameArgs, call: Call) -> Outcome:
        """Rename a file or directory on a collection."""
        session = self._session(call)
        collection = self._collection(args.collection, call)
        result = self._sdk(session.client.operation_rename, collection, args.oldpath, args.newpath)
        return Outcome(code=result["code"], message=result.get("message", ""))

    @operation
    def delete(self, args: DeleteArgs, call: Call) -> Submitted:
        """Submit a delete task for paths on a collection."""
        import globus_sdk

        session = self._session(call)
        options: dict[str, Any] = {"recursive": args.recursive}
        if args.label:
            options["label"] = args.label
        data = globus_sdk.DeleteData(self._collection(args.collection, call), **options)
        for path in args.paths:
            data.add_item(path)
        result = self._sdk(session.client.submit_delete, data)
        task_id = str(result["task_id"])
        session.watched[task_id] = Task(task_id=task_id, status="ACTIVE", label=args.label)
        return Submitted(
            task_id=task_id, submission_id=result.get("submission_id"), status=result["code"]
        )

    @operation(idempotent=True)
    def endpoint_search(self, args: SearchArgs, call: Call) -> Documents:
        """Search collections by text."""
        session = self._session(call)
        found = self._sdk(
            lambda: list(session.client.endpoint_search(args.filter_text, limit=args.limit))
        )
        return Documents(items=[dict(doc) for doc in found])

    @operation(idempotent=True)
    def get_endpoint(self, args: EndpointRef, call: Call) -> dict[str, Any]:
        """The Globus document of an endpoint or collection ('local' allowed)."""
        session = self._session(call)
        doc = self._sdk(session.client.get_endpoint, self._collection(args.endpoint_id, call))
        return dict(doc.data) if isinstance(doc.data, dict) else {"data": doc.data}

    # ------------------------------------------------------------------ following tasks

    def _observe(self, user: str, session: _Session, task_id: str) -> Task:
        """Fetch a task; emit ``transfer_status`` if it changed; stop watching it when done."""
        response = self._sdk(session.client.get_task, task_id)
        task = Task.from_doc(response.data if isinstance(response.data, dict) else {})
        before = session.watched.get(task_id)
        changed = before != task and (before is not None or task.status in TERMINAL)
        if changed:
            self.ctx.emit("transfer_status", task.model_dump(mode="json") | {"user": user})
        if task.status in TERMINAL:
            session.watched.pop(task_id, None)
        else:
            session.watched[task_id] = task
        return task

    def _poll_once(self) -> None:
        with self._lock:
            sessions = list(self._sessions.items())
        for user, session in sessions:
            for task_id in list(session.watched):
                try:
                    self._observe(user, session, task_id)
                except OrbitError as exc:
                    self.ctx.logger.warning("polling Globus task %s failed: %s", task_id, exc)


__all__ = ["GlobusPlugin", "translate"]
