"""The customer web app: server-rendered pages (Jinja2 + htmx) mounted in the API process.

``web.mount.mount_web(app, settings)`` adds it to the FastAPI app under ``/app``. Pages call the
same services as ``api/`` (``api/services``, ``billing``); the app holds no business rule.
"""
