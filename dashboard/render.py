"""Page rendering: bottle SimpleTemplate files under dashboard/views/ ({{ }} escapes HTML)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bottle

from .security import json_for_html
from .sessions import Session

PACKAGE_DIR = Path(__file__).resolve().parent
VIEWS_DIR = PACKAGE_DIR / "views"
STATIC_DIR = PACKAGE_DIR / "static"


def render(name: str, **context: Any) -> str:
    page: str = bottle.template(name, template_lookup=[str(VIEWS_DIR)], **context)
    return page


def render_page(
    page: str, title: str, session: Session, initial: Any = None, **context: Any
) -> str:
    """A page of the app: the layout, the page's own markup, its data for the page's script.

    The data travels as JSON inside <script type="application/json"> (with <, > and &
    escaped), and the page's module renders it with textContent, never innerHTML.
    """
    return render(
        page,
        page=page,
        title=title,
        session=session,
        initial=json_for_html(initial),
        **context,
    )
