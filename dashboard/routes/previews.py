"""Job previews: the image bytes of a job's newest thumbnail (from `jobs.preview`), and which
jobs have one (`jobs.previews`), for the jobs list, the job page and the overview's tile.

An image URL carries the preview's `version` (`?v=`); such a response never changes, so the
browser may keep it. Without `v` the newest is sent and must be revalidated.
"""

from __future__ import annotations

import base64
from typing import Any

import bottle

from ..guard import HttpFailure
from ..runtime import Dashboard

MAX_IDS = 500


def install(app: bottle.Bottle, dash: Dashboard) -> None:
    @app.get("/jobs/<job_id:int>/preview", access="viewer")
    def job_preview(job_id: int) -> bottle.HTTPResponse:
        """The job's newest preview image (404 while it has none)."""
        preview = dash.call("jobs.preview", {"job_id": job_id})
        response = bottle.HTTPResponse(base64.b64decode(preview["data"]))
        response.content_type = preview["content_type"]
        versioned = bottle.request.query.get("v")
        response.set_header(
            "Cache-Control", "private, max-age=86400, immutable" if versioned else "no-cache"
        )
        return response

    @app.get("/jobs/previews", access="viewer")
    def jobs_previews() -> dict[str, Any]:
        """?ids=1,2,3 → `{previews}` of those jobs (see jobs.previews)."""
        text = bottle.request.query.getunicode("ids") or ""
        try:
            ids = [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise HttpFailure(400, "ids must be job ids separated by commas", "bad_param") from None
        if len(ids) > MAX_IDS:
            raise HttpFailure(400, f"ids: at most {MAX_IDS} jobs", "bad_param")
        if not ids:
            return {"previews": []}
        result: dict[str, Any] = dash.call("jobs.previews", {"job_ids": ids, "limit": len(ids)})
        return result
