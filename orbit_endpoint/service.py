"""Process entry: logging, signals, exit codes. Used by ``orbit endpoint start``."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from orbit_amqp import FatalLinkError

from .runtime import Endpoint
from .settings import EndpointSettings

log = logging.getLogger("orbit_endpoint")


def setup_logging(level: str = "INFO") -> None:
    """Plain timestamped lines on stderr at ``level`` (``DEBUG``, ``INFO``, ...)."""
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for noisy in ("aio_pika", "aiormq"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


async def serve(settings: EndpointSettings) -> None:
    """Run an endpoint until SIGINT/SIGTERM."""
    endpoint = Endpoint(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, endpoint.request_shutdown)
    log.info("endpoint %s connecting to %s", settings.name, settings.safe_url)
    await endpoint.run()


def run(settings: EndpointSettings) -> int:
    """Blocking run; returns the process exit code (2 for bad credentials)."""
    try:
        asyncio.run(serve(settings))
    except FatalLinkError as exc:
        log.error("%s", exc)
        return 2
    return 0


def main() -> None:
    settings = EndpointSettings()  # type: ignore[call-arg,unused-ignore]  # name from env
    setup_logging(settings.effective_log_level)
    sys.exit(run(settings))


__all__ = ["main", "run", "serve", "setup_logging"]
