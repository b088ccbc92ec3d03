"""The pages people use (HTML, Vietnamese, working without JavaScript), served by submissions.

``/`` leads to the sign-in page or to the dashboard; from there every page meant for the
signed-in person is a link away. Routes are left out of the OpenAPI document: the JSON API
is described there, and these pages are built on it.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from services.common.http import StreamedRoute
from services.submissions.attachments_api import FORM_OVERHEAD
from services.submissions.pages import admin, dashboard, office, report, review, sign_in
from services.submissions.pages.base import STATIC_DIR

router = APIRouter(include_in_schema=False)
for module in (sign_in, dashboard, report, office, review, admin):
    router.include_router(module.router)

FORM_POSTS = r"/(?!api/).*"
"""Every POST outside the API is a page's form."""
REPORT_FORM = r"/periods/[^/]+/report"
"""The report form, which may carry a file ("Tải tệp lên")."""


def form_routes(max_body_bytes: int, max_file_bytes: int) -> list[StreamedRoute]:
    """Pages' forms are posted as forms, not JSON: exempt from the API's JSON-only rule (the
    pages read them as forms), with the API's size limit; the report form's with a file's
    more (the first route that matches applies)."""
    with_file = max_body_bytes + max_file_bytes + FORM_OVERHEAD
    return [
        StreamedRoute(REPORT_FORM, with_file, stated_bytes=max_file_bytes),
        StreamedRoute(FORM_POSTS, max_body_bytes),
    ]


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
