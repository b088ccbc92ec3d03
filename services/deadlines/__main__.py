"""``python -m services.deadlines``: run the deadlines service."""

from __future__ import annotations

from services.common.runner import serve
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings


def main() -> None:
    settings = DeadlinesSettings()
    serve(build_app(settings), settings, settings.port)


if __name__ == "__main__":
    main()
