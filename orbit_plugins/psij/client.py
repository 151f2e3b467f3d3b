"""Jobs through an endpoint's ``psij`` plugin: :class:`AsyncJobs` / :class:`JobHandle` and
their blocking twins :class:`Jobs` / :class:`SyncJobHandle`.

    jobs = AsyncJobs(client, "hpc1")
    job = await jobs.submit(job_spec("bash", "-c", "echo hi; exit 3"))
    async for chunk in job.stream():
        print(chunk.data, end="")
    print((await job.wait()).exit_code)  # 3

``stream()`` follows ``job_output`` events and fills any gap (a lost event, an endpoint
restart, a late subscription) from ``get_job_status`` by byte offset, so the output it
yields is complete, in order and never repeated. The results are the plugin's own wire
models (:mod:`orbit_plugins.psij.schema`); fields they do not know are dropped before
validation, so a newer endpoint that sends more does not break an older client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from orbit_client.feature import read

from .schema import TERMINAL, CancelResult, JobInfo, JobStatus, OutputChunk, Stream

if TYPE_CHECKING:
    from orbit_client import AsyncOrbitClient, OrbitClient


def job_spec(
    executable: str,
    *arguments: str,
    directory: str | None = None,
    environment: Mapping[str, str] | None = None,
    queue: str | None = None,
    account: str | None = None,
    nodes: int | None = None,
    processes: int | None = None,
    gpus_per_process: int | None = None,
    duration: int | None = None,
    custom_attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A PSI/J job spec for ``submit_job`` (``duration`` in seconds); the endpoint validates it."""
    resources = {
        "node_count": nodes,
        "process_count": processes,
        "gpu_cores_per_process": gpus_per_process,
    }
    attributes: dict[str, Any] = {"queue_name": queue, "account": account, "duration": duration}
    if custom_attributes:
        attributes["custom_attributes"] = dict(custom_attributes)
    spec: dict[str, Any] = {"executable": executable, "arguments": list(arguments)}
    if directory is not None:
        spec["directory"] = directory
    if environment:
        spec["environment"] = dict(environment)
    if any(v is not None for v in resources.values()):
        spec["resources"] = {k: v for k, v in resources.items() if v is not None}
    if any(v is not None for v in attributes.values()):
        spec["attributes"] = {k: v for k, v in attributes.items() if v is not None}
    return spec


class AsyncJobs:
    """The ``psij`` plugin of one endpoint, with typed results."""

    def __init__(self, client: AsyncOrbitClient, endpoint: str) -> None:
        self.client, self.endpoint = client, endpoint

    async def _call(self, method: str, **args: Any) -> Any:
        return await self.client.call(self.endpoint, f"psij.{method}", **args)

    async def submit(
        self,
        spec: Mapping[str, Any] | BaseModel,
        executor: str = "local",
        **call_options: Any,
    ) -> JobHandle:
        """Submit a job and return its handle (``call_options``: ``timeout``,
        ``idempotency_key``, ``wait_for_endpoint``). ``spec`` is a dict (see :func:`job_spec`)
        or any pydantic model of one, e.g. ``orbit_plugins.psij.schema.JobSpec``."""
        body = spec.model_dump(exclude_none=True) if isinstance(spec, BaseModel) else dict(spec)
        raw = await self._call("submit_job", spec=body, executor=executor, **call_options)
        info = read(JobInfo, raw)
        return JobHandle(self, info.job_id, info)

    def handle(self, job_id: str) -> JobHandle:
        """A handle to an existing job (yours, or anyone's for an endpoint admin)."""
        return JobHandle(self, job_id)

    async def status(
        self, job_id: str, stdout_offset: int = 0, stderr_offset: int = 0, max_bytes: int = 0
    ) -> JobStatus:
        """State, exit code and up to ``max_bytes`` of output after the offsets."""
        raw = await self._call(
            "get_job_status",
            job_id=job_id,
            stdout_offset=stdout_offset,
            stderr_offset=stderr_offset,
            max_bytes=max_bytes,
        )
        return read(JobStatus, raw)

    async def list(self, all_users: bool = False) -> list[JobInfo]:
        raw = await self._call("list_jobs", all_users=all_users)
        return [read(JobInfo, j) for j in raw["jobs"]]

    async def cancel(self, job_id: str) -> CancelResult:
        return read(CancelResult, await self._call("cancel_job", job_id=job_id))


class JobHandle:
    """One job: ``status()``, ``cancel()``, ``stream()`` of its output, ``wait()`` for its end."""

    CATCH_UP_BYTES = 512 * 1024

    def __init__(self, jobs: AsyncJobs, job_id: str, info: JobInfo | None = None) -> None:
        self.jobs, self.job_id, self.info = jobs, job_id, info
        self.final: JobStatus | None = None
        """The terminal status (without output), once ``stream()`` or ``wait()`` saw it."""

    def __repr__(self) -> str:
        return f"JobHandle({self.jobs.endpoint!r}, {self.job_id!r})"

    async def status(self) -> JobStatus:
        """The job now (without output)."""
        return await self.jobs.status(self.job_id)

    async def cancel(self) -> CancelResult:
        return await self.jobs.cancel(self.job_id)

    async def wait(self, poll: float = 2.0) -> JobStatus:
        """Wait for the job to end and return its final status (without output).

        Follows ``job_status`` events and asks ``get_job_status`` (no output bytes) on each
        one for this job, or every ``poll`` seconds; at once when the end is already known.
        """
        if self.final is not None:
            return self.final
        sub = await self.jobs.client.subscribe(self.jobs.endpoint, "psij", "job_status")
        try:
            while True:
                st = await self.status()
                if st.state in TERMINAL:
                    self.final = st
                    return st
                with contextlib.suppress(TimeoutError, StopAsyncIteration):
                    async with asyncio.timeout(poll):
                        while (await sub.get()).data.get("job_id") != self.job_id:
                            pass
        finally:
            await sub.close()

    async def stream(self, poll: float = 2.0) -> AsyncGenerator[OutputChunk, None]:
        """The job's output from the start, in order and without gaps, until the job ended.

        ``job_output`` events are used while they arrive in order; ``get_job_status`` fills a
        gap, and is asked every ``poll`` seconds without a fitting event.
        """
        sub = await self.jobs.client.subscribe(self.jobs.endpoint, "psij")
        offsets: dict[Stream, int] = {"stdout": 0, "stderr": 0}
        try:
            need_poll = True
            while True:
                if need_poll:
                    need_poll = False
                    async for chunk in self._catch_up(offsets):
                        yield chunk
                    end = self.final  # set by _catch_up, or earlier by wait()
                    if (
                        end is not None
                        and offsets["stdout"] >= end.stdout_size
                        and offsets["stderr"] >= end.stderr_size
                    ):
                        return
                try:
                    event = await sub.get(timeout=poll)
                except (TimeoutError, StopAsyncIteration):  # quiet, or the subscription ended
                    need_poll = True
                    continue
                if event.data.get("job_id") != self.job_id:
                    continue
                if event.topic == "job_output":
                    chunk = read(OutputChunk, event.data)
                    if chunk.offset == offsets[chunk.stream]:
                        offsets[chunk.stream] = chunk.end
                        yield chunk
                    elif chunk.offset > offsets[chunk.stream]:
                        need_poll = True  # a gap: fetch it by offset
                elif event.data.get("state") in TERMINAL:
                    need_poll = True
        finally:
            await sub.close()

    async def _catch_up(self, offsets: dict[Stream, int]) -> AsyncIterator[OutputChunk]:
        """Fetch output after ``offsets`` until none is left; set ``final`` if the job ended."""
        while True:
            before = dict(offsets)
            st = await self.jobs.status(
                self.job_id, offsets["stdout"], offsets["stderr"], self.CATCH_UP_BYTES
            )
            pieces: tuple[tuple[Stream, str, int], ...] = (
                ("stdout", st.stdout, st.stdout_offset),
                ("stderr", st.stderr, st.stderr_offset),
            )
            for stream, text, end in pieces:
                if end > offsets[stream]:
                    yield OutputChunk(
                        job_id=self.job_id,
                        stream=stream,
                        offset=offsets[stream],
                        end=end,
                        data=text,
                    )
                    offsets[stream] = end
            drained = st.stdout_offset >= st.stdout_size and st.stderr_offset >= st.stderr_size
            if drained and st.state in TERMINAL:
                self.final = st.model_copy(update={"stdout": "", "stderr": ""})
            if drained or offsets == before:
                return


class Jobs:
    """Blocking :class:`AsyncJobs` on an :class:`~orbit_client.OrbitClient`."""

    def __init__(self, client: OrbitClient, endpoint: str) -> None:
        self.client, self.endpoint = client, endpoint
        self._async = client.run_in_loop(lambda c: _make(c, endpoint))

    def submit(
        self, spec: Mapping[str, Any] | BaseModel, executor: str = "local", **call_options: Any
    ) -> SyncJobHandle:
        handle = self.client.run_in_loop(
            lambda _: self._async.submit(spec, executor, **call_options)
        )
        return SyncJobHandle(self, handle)

    def handle(self, job_id: str) -> SyncJobHandle:
        return SyncJobHandle(self, self._async.handle(job_id))

    def status(
        self, job_id: str, stdout_offset: int = 0, stderr_offset: int = 0, max_bytes: int = 0
    ) -> JobStatus:
        return self.client.run_in_loop(
            lambda _: self._async.status(job_id, stdout_offset, stderr_offset, max_bytes)
        )

    def list(self, all_users: bool = False) -> list[JobInfo]:
        return self.client.run_in_loop(lambda _: self._async.list(all_users))

    def cancel(self, job_id: str) -> CancelResult:
        return self.client.run_in_loop(lambda _: self._async.cancel(job_id))


class SyncJobHandle:
    """Blocking :class:`JobHandle`; ``for chunk in job.stream(): ...``."""

    def __init__(self, jobs: Jobs, handle: JobHandle) -> None:
        self._jobs, self._handle = jobs, handle

    def __repr__(self) -> str:
        return f"SyncJobHandle({self._jobs.endpoint!r}, {self.job_id!r})"

    @property
    def job_id(self) -> str:
        return self._handle.job_id

    @property
    def info(self) -> JobInfo | None:
        return self._handle.info

    @property
    def final(self) -> JobStatus | None:
        return self._handle.final

    def status(self) -> JobStatus:
        return self._jobs.client.run_in_loop(lambda _: self._handle.status())

    def cancel(self) -> CancelResult:
        return self._jobs.client.run_in_loop(lambda _: self._handle.cancel())

    def wait(self, poll: float = 2.0) -> JobStatus:
        return self._jobs.client.run_in_loop(lambda _: self._handle.wait(poll))

    def stream(self, poll: float = 2.0) -> Iterator[OutputChunk]:
        """Output chunks as :meth:`JobHandle.stream` yields them; leaving the loop early
        closes the event subscription."""
        agen = self._handle.stream(poll)
        run = self._jobs.client.run_in_loop

        async def step(_: AsyncOrbitClient) -> OutputChunk | None:
            try:
                return await agen.__anext__()
            except StopAsyncIteration:
                return None

        async def close(_: AsyncOrbitClient) -> None:
            await agen.aclose()

        try:
            while (chunk := run(step)) is not None:
                yield chunk
        finally:
            run(close)


async def _make(client: AsyncOrbitClient, endpoint: str) -> AsyncJobs:
    return AsyncJobs(client, endpoint)


__all__ = [
    "TERMINAL",
    "AsyncJobs",
    "CancelResult",
    "JobHandle",
    "JobInfo",
    "JobStatus",
    "Jobs",
    "OutputChunk",
    "Stream",
    "SyncJobHandle",
    "job_spec",
]
