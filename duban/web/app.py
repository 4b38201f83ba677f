"""The web app (FastAPI + Jinja2, from Prefect's own dependencies).

For now: a start page and a health check, served together with the scheduled flows by
`duban run`.  The owner's action pages (signed links) and the dashboard build on this app.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import text

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))


def create_app() -> FastAPI:
    app = FastAPI(title="督办", docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request):
        return TEMPLATES.TemplateResponse(request, "index.html", {})

    @app.get("/healthz")
    def healthz():
        from duban.runtime import runtime

        try:
            with runtime().engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as err:  # noqa: BLE001
            return JSONResponse({"ok": False, "database": f"{err.__class__.__name__}"}, status_code=503)
        return {"ok": True}

    return app
