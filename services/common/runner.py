"""Running a service process: logging set-up and uvicorn, inside the graceful-stop budget.

Docker (``docker stop``, compose's default ``stop_grace_period``) and Kubernetes
(``terminationGracePeriodSeconds``) send SIGKILL 10 s after SIGTERM. The stop must be done by
then, with room to spare, or a handler is killed half-way. The budget, 8 s in all:

  HTTP_DRAIN_SECONDS      3 s  uvicorn stops accepting, lets open requests finish, then
                               cancels them (``timeout_graceful_shutdown``)
  LIFESPAN_STOP_SECONDS   5 s  the lifespan's stop (Runtime): background loops cancelled;
                               broker.stop() waits at most kafka.BROKER_GRACEFUL_TIMEOUT (3 s, all
                               subscribers at once) for in-flight handlers, then closes the
                               consumers and the producer; the MongoDB client is closed.
                               uvicorn puts no limit on this step: the Runtime must bound it.

A handler cut short is not acknowledged (manual acks), so its message is redelivered: a short
budget loses no work, it only repeats some.
"""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from services.common.settings import ServiceSettings

KILL_AFTER_SECONDS = 10.0
"""What Docker and Kubernetes allow by default between SIGTERM and SIGKILL."""
HTTP_DRAIN_SECONDS = 3
LIFESPAN_STOP_SECONDS = 5.0
GRACEFUL_STOP_BUDGET = HTTP_DRAIN_SECONDS + LIFESPAN_STOP_SECONDS
"""Both steps together, with 2 s left before SIGKILL (tests/unit/test_shutdown.py checks it)."""


def serve(app: FastAPI, settings: ServiceSettings, port: int) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    uvicorn.run(
        app,
        host=settings.host,
        port=port,
        log_level=settings.log_level.lower(),
        access_log=settings.access_log,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=HTTP_DRAIN_SECONDS,
    )
