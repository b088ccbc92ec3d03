"""The results file: the figures, and everything needed to say what produced them."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import socket
import subprocess
import urllib.request
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness import Row
from deploy.local import stack

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
LIBRARIES = (
    "faststream",
    "aiokafka",
    "pymongo",
    "fastapi",
    "starlette",
    "uvicorn",
    "pydantic",
    "aiosmtplib",
    "httpx",
)


def environment(layout: stack.Layout, ferretdb_version: str | None) -> dict[str, Any]:
    return {
        "hostname": socket.gethostname(),
        "cpu_count": os.cpu_count(),
        # Other work on the machine widens every range: say how busy it was.
        "load_average_1_5_15_at_end": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "servers": {
            "kafka": stack.KAFKA_VERSION,
            "ferretdb": ferretdb_version or stack.FERRETDB_VERSION,
            "ferretdb_backend": layout.ferretdb_backend,
            "mailpit": _mailpit_version(layout) or stack.MAILPIT_VERSION,
        },
        "libraries": {name: _version(name) for name in LIBRARIES},
        "git": git_state(),
    }


def write(rows: Sequence[Row], env: dict[str, Any], started: dt.datetime, seconds: float) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # The default backend keeps the plain name; another one is named, so both can be kept.
    backend = env["servers"]["ferretdb_backend"]
    suffix = "" if backend == stack.DEFAULT_FERRETDB_BACKEND else f"-{backend}"
    name = f"{started:%Y-%m-%d}-{env['hostname']}{suffix}"
    path = RESULTS_DIR / f"{name}.json"
    run = 1
    while path.exists():  # a second run the same day is kept beside the first
        run += 1
        path = RESULTS_DIR / f"{name}-{run}.json"
    document = {
        "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(seconds, 1),
        "environment": env,
        "rows": [row.as_json() for row in rows],
    }
    path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return path


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _mailpit_version(layout: stack.Layout) -> str | None:
    url = f"http://127.0.0.1:{layout.mailpit_port}/api/v1/info"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            version = str(json.load(response).get("Version") or "")
    except (OSError, ValueError):
        return None
    # A ``go install`` build reports "dev": the pinned version is the better answer then.
    return None if version in ("", "dev") else version


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    # Other files of the tree may be edited while the bench runs: say so in the record.
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}
