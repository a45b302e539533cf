"""Webhooks are for admins: a dashboard viewer gets neither the page nor the methods, an admin
user's create is audited as theirs with the secret redacted."""

from __future__ import annotations

from tests.security.test_audit import dashboard, dashboard_login, entries  # noqa: F401
from tests.support import MasterProcess, RpcClient


def test_the_webhooks_page_and_methods_are_admin_only(
    master: MasterProcess,
    dashboard: object,  # noqa: F811
) -> None:
    viewer, viewer_csrf = dashboard_login(dashboard, "vic", "vic-password-1")
    assert viewer.get("/webhooks").status == 403  # type: ignore[attr-defined]
    assert viewer.get("/api/webhooks.list").status == 403  # type: ignore[attr-defined]
    refused = viewer.post(  # type: ignore[attr-defined]
        "/api/webhooks.create",
        json_body={"url": "http://127.0.0.1:9/", "events": ["*"]},
        headers={"X-CSRF-Token": viewer_csrf},
    )
    assert refused.status == 403
    admin, csrf = dashboard_login(dashboard, "carol", "carol-password-1")
    created = admin.post(  # type: ignore[attr-defined]
        "/api/webhooks.create",
        json_body={"url": "http://127.0.0.1:9/", "events": ["*"], "secret": "hush"},
        headers={"X-CSRF-Token": csrf},
    )
    assert created.status == 200, created.text
    page = admin.get("/webhooks")  # type: ignore[attr-defined]
    assert page.status == 200 and "http://127.0.0.1:9/" in page.text and "hush" not in page.text
    with RpcClient(master.port) as rpc:
        (entry,) = entries(rpc, limit=1)
    assert (entry["method"], entry["user"]) == ("webhooks.create", "carol")
    assert entry["params"]["secret"] == "[redacted]"
