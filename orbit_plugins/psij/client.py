"""Typed client helpers for the ``psij`` plugin: :class:`PsijJobs` and :class:`JobHandle`.

Pure client code (no PSI/J import); it lives next to the schema because ``orbit_client``
may not import plugin packages (tests/unit/test_architecture.py).

    from orbit_plugins.psij.client import PsijJobs
    jobs = PsijJobs(client, "hpc1")
    job = await jobs.submit(JobSpec(executable="bash", arguments=["-c", "echo hi"]))
    async for chunk in job.stream():
        print(chunk.data, end="")
    print((await job.wait()).exit_code)

``stream()`` follows ``job_output`` events and fills any gap (a lost event, an endpoint
restart) from ``get_job_status`` by byte offset, so the output it yields is complete and
in order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

from orbit_protocol import Event

from .schema import TERMINAL, CancelResult, JobInfo, JobList, JobSpec, JobStatus, OutputChunk

Stream = Literal["stdout", "stderr"]


class _Subscription(Protocol):
    async def get(self, timeout: float | None = None) -> Event: ...
    async def close(self) -> None: ...


class AsyncClient(Protocol):
    """What the helpers need of :class:`orbit_client.AsyncOrbitClient`."""

    async def call(self, endpoint: str, operation: str, /, **args: Any) -> Any: ...
    async def subscribe(
        self, endpoint: str | None = None, plugin: str | None = None, topic: str | None = None
    ) -> _Subscription: ...


class PsijJobs:
    """The ``psij`` plugin of one endpoint, with typed results."""

    def __init__(self, client: AsyncClient, endpoint: str) -> None:
        self.client, self.endpoint = client, endpoint

    async def _call(self, method: str, **args: Any) -> Any:
        return await self.client.call(self.endpoint, f"psij.{method}", **args)

    async def submit(
        self, spec: JobSpec | dict[str, Any], executor: str = "local", **call_options: Any
    ) -> JobHandle:
        """Submit a job and return its handle (``call_options``: ``timeout`` etc.)."""
        body = spec.model_dump(exclude_none=True) if isinstance(spec, JobSpec) else spec
        raw = await self._call("submit_job", spec=body, executor=executor, **call_options)
        info = JobInfo.model_validate(raw)
        return JobHandle(self, info.job_id, info)

    def handle(self, job_id: str) -> JobHandle:
        """A handle to an existing job."""
        return JobHandle(self, job_id)

    async def status(
        self, job_id: str, stdout_offset: int = 0, stderr_offset: int = 0, max_bytes: int = 0
    ) -> JobStatus:
        raw = await self._call(
            "get_job_status",
            job_id=job_id,
            stdout_offset=stdout_offset,
            stderr_offset=stderr_offset,
            max_bytes=max_bytes,
        )
        return JobStatus.model_validate(raw)

    async def list(self, all_users: bool = False) -> list[JobInfo]:
        return JobList.model_validate(await self._call("list_jobs", all_users=all_users)).jobs

    async def cancel(self, job_id: str) -> CancelResult:
        return CancelResult.model_validate(await self._call("cancel_job", job_id=job_id))


class JobHandle:
    """One job: ``status()``, ``cancel()``, ``stream()`` of its output, ``wait()`` for its end."""

    def __init__(self, jobs: PsijJobs, job_id: str, info: JobInfo | None = None) -> None:
        self.jobs, self.job_id, self.info = jobs, job_id, info
        self.final: JobStatus | None = None
        """The terminal status, once ``stream()`` or ``wait()`` has seen it."""

    def __repr__(self) -> str:
        return f"JobHandle({self.jobs.endpoint!r}, {self.job_id!r})"

    async def status(self) -> JobStatus:
        return await self.jobs.status(self.job_id)

    async def cancel(self) -> CancelResult:
        return await self.jobs.cancel(self.job_id)

    async def wait(self, poll: float = 2.0) -> JobStatus:
        """Wait for the job to end (draining its output) and return its final status."""
        async for _ in self.stream(poll=poll):
            pass
        assert self.final is not None
        return self.final

    async def stream(self, poll: float = 2.0) -> AsyncIterator[OutputChunk]:
        """The job's output from the start, in order, until the job has ended.

        Events are used while they arrive in order; the status call fills gaps and is
        made every ``poll`` seconds without events.
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
                    if self.final is not None:
                        return
                try:
                    event = await sub.get(timeout=poll)
                except TimeoutError:
                    need_poll = True
                    continue
                if event.data.get("job_id") != self.job_id:
                    continue
                if event.topic == "job_output":
                    chunk = OutputChunk.model_validate(event.data)
                    if chunk.offset == offsets[chunk.stream]:
                        offsets[chunk.stream] = chunk.end
                        yield chunk
                    elif chunk.offset > offsets[chunk.stream]:
                        need_poll = True  # a gap: fetch by offset
                elif event.data.get("state") in TERMINAL:
                    need_poll = True
        finally:
            await sub.close()

    async def _catch_up(self, offsets: dict[Stream, int]) -> AsyncIterator[OutputChunk]:
        """Fetch output since ``offsets`` until none is left; set ``final`` if the job ended."""
        while True:
            before = dict(offsets)
            st = await self.jobs.status(
                self.job_id, offsets["stdout"], offsets["stderr"], max_bytes=512 * 1024
            )
            for name, text, end in (
                ("stdout", st.stdout, st.stdout_offset),
                ("stderr", st.stderr, st.stderr_offset),
            ):
                stream: Stream = "stdout" if name == "stdout" else "stderr"
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


__all__ = ["JobHandle", "PsijJobs"]
