from services.common.runner import serve
from services.notify.app import build_app
from services.notify.config import NotifySettings

settings = NotifySettings()
serve(build_app(settings), settings, settings.port)
