"""Running a service process: logging set-up and uvicorn."""

from __future__ import annotations

import logging

import uvicorn
from fastapi import FastAPI

from services.common.settings import ServiceSettings


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
        timeout_graceful_shutdown=10,
    )
