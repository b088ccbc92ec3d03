"""``python -m services.deadlines``: run the deadlines service."""

from __future__ import annotations

import gc

from services.common.runner import serve
from services.deadlines.app import build_app
from services.deadlines.config import DeadlinesSettings


def main() -> None:
    settings = DeadlinesSettings()
    app = build_app(settings)
    # The plans just loaded live as long as the process, and a province's (100,000 units) is
    # 800,000 objects the collector tracks. A rung-day scan allocates an event per unit, which
    # sets off the collector's full passes, each walking all of them: half the scan's CPU at
    # 100,000 units (bench/README.md, "The deadlines tick"). Frozen, they are left out of
    # every pass; none of them becomes garbage before the process ends.
    gc.freeze()
    serve(app, settings, settings.port)


if __name__ == "__main__":
    main()
