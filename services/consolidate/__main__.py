"""``python -m services.consolidate``: run the service with uvicorn."""

from __future__ import annotations

from services.common.runner import serve
from services.consolidate.app import build_app
from services.consolidate.config import ConsolidateSettings


def main() -> None:
    settings = ConsolidateSettings()
    serve(build_app(settings), settings, settings.port)


if __name__ == "__main__":
    main()
