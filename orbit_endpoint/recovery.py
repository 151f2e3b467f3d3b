"""After a restart: answer or resume what the journal holds from the previous run.

A finished request whose reply was not confirmed is answered again; an accepted one is run
again if its operation is idempotent and its arguments were kept, and answered
``INTERRUPTED`` (inside ``INTERNAL``) otherwise. A request cut short by two or more
restarts is re-run alone, and answered ``POISON_MESSAGE`` once it has been cut short
``resume_limit`` times (``docs/reliability.md``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from orbit_plugins.base import Call
from orbit_protocol import InternalError, PoisonMessage, Reply, Request

from .journal import Entry, Journal
from .lifecycle import Accepted, Lifecycle

log = logging.getLogger(__name__)


def interrupted(entry: Entry, why: str) -> bytes:
    error = InternalError(
        f"the endpoint restarted while {entry.plugin}.{entry.method} ran and {why};"
        " send the request again",
        {"interrupted": True, "request_id": entry.request_id},
    )
    return Reply.failure(error).to_bytes()


def poison(entry: Entry) -> bytes:
    runs = entry.resumes + 1
    error = PoisonMessage(
        f"{entry.plugin}.{entry.method} was cut short by {runs} endpoint restarts (its"
        " handler may crash the endpoint), so it is not run again",
        {"reason": "resume_limit", "runs": runs, "request_id": entry.request_id},
    )
    return Reply.failure(error).to_bytes()


class Recovery:
    """Runs once, after the publishing link is up and before consuming starts."""

    def __init__(
        self, lifecycle: Lifecycle, journal: Journal, *, retention: float, resume_limit: int
    ) -> None:
        self.lifecycle = lifecycle
        self.journal = journal
        self.retention = retention
        self.resume_limit = resume_limit

    def run(self) -> None:
        pruned = self.journal.prune(time.time() - self.retention)
        if pruned:
            log.info("journal: forgot %d answered request(s) older than the retention", pruned)
        for entry in self.journal.pending("done"):
            self._answer(entry, entry.reply or interrupted(entry, "its reply was not kept"))
        suspects: list[Entry] = []
        for entry in self.journal.pending("accepted"):
            if entry.resumes > 0:  # already re-run once and cut short again: maybe a poison
                suspects.append(entry)
            else:
                self._resume(entry)
        if suspects:
            self.lifecycle.spawn(self._one_by_one(suspects))

    async def _one_by_one(self, suspects: list[Entry]) -> None:
        """If one of them kills the process, the others are not running beside it, so only
        the culprit's count grows; the rest run once it is out of the way."""
        for entry in suspects:
            task = self._resume(entry)
            if task is not None:
                await asyncio.wait([task])

    def _answer(self, entry: Entry, body: bytes) -> None:
        self.lifecycle.spawn(
            self.lifecycle.finish(entry.user, entry.key, entry.reply_to, entry.request_id, body)
        )

    def _resume(self, entry: Entry) -> asyncio.Task[Any] | None:
        """Run an accepted request again, or answer it; the task running it, if any."""
        if entry.args is None:  # arguments were never journaled (bulk data, secrets)
            self._answer(entry, interrupted(entry, "its arguments were not kept"))
            return None
        spec = self.lifecycle.spec_of(entry.plugin, entry.method)
        if spec is not None and not spec.idempotent:  # None: the same error reply again
            self._answer(entry, interrupted(entry, "it is not idempotent, so it was not run again"))
            return None
        if entry.resumes >= self.resume_limit:
            log.error(
                "request %s (%s.%s) was cut short by %d restarts: answering POISON_MESSAGE",
                entry.request_id,
                entry.plugin,
                entry.method,
                entry.resumes + 1,
            )
            self._answer(entry, poison(entry))
            return None
        self.journal.count_resume(entry.user, entry.key)  # durable before it runs again
        policy = self.lifecycle.policy
        call = Call(
            entry.request_id,
            entry.user,
            policy.endpoint,
            entry.user in policy.admins,
            entry.deadline,
        )
        request = Request(plugin=entry.plugin, method=entry.method, args=entry.args)
        log.info("resuming %s (%s.%s)", entry.request_id, entry.plugin, entry.method)
        return self.lifecycle.start(
            Accepted(entry.user, entry.key, entry.reply_to, entry.request_id, request, call)
        )


__all__ = ["Recovery", "interrupted", "poison"]
