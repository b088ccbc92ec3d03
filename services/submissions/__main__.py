from services.common.runner import serve
from services.submissions.app import build_app
from services.submissions.config import SubmissionsSettings

settings = SubmissionsSettings()
serve(build_app(settings), settings, settings.port)
