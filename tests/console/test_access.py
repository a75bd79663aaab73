"""Nobody but the logged-in owner gets a page or an API answer, and no state changes without the CSRF token.

The state-changing routes are enumerated from the app itself, so a route added later is covered here
without anyone remembering to add it."""

from __future__ import annotations

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.console.app import create_app
from tests.console.conftest import PASSWORD, Clock, csrf_of, log_in

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _routes(client: TestClient) -> list[tuple[str, str]]:
    out = []
    for r in client.app.routes:  # type: ignore[attr-defined]
        if isinstance(r, Route):
            path = r.path.replace("{user_id:path}", "telegram:1")
            out += [(m, path) for m in sorted(r.methods or ()) if m != "HEAD"]
    return out


def test_every_route_is_enumerated(client: TestClient) -> None:
    routes = _routes(client)
    assert ("POST", "/catalog/upload") in routes and ("GET", "/") in routes
    assert len([r for r in routes if r[0] in UNSAFE]) >= 9


def test_no_credentials_pages_redirect_and_api_is_401(client: TestClient) -> None:
    for method, path in _routes(client):
        if path == "/login":
            continue
        r = client.request(method, path, follow_redirects=False)
        if path.startswith("/api/"):
            assert r.status_code == 401, (method, path)
        else:
            assert r.status_code == 303 and r.headers["location"] == "/login", (method, path)


def test_wrong_password_is_refused_and_rate_limited(client: TestClient) -> None:
    for _ in range(5):
        r = log_in(client, "wrong")
        assert r.status_code == 401 and "not right" in r.text
    assert log_in(client, "wrong").status_code == 429
    assert log_in(client, PASSWORD).status_code == 429  # the limit holds even for the right password
    assert client.get("/", follow_redirects=False).status_code == 303


def test_login_cookie_is_httponly_and_samesite_strict(client: TestClient) -> None:
    r = log_in(client)
    assert r.status_code == 303
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=43200" in cookie
    assert client.get("/").status_code == 200


def test_expired_session_goes_back_to_login(logged_in: TestClient, clock: Clock) -> None:
    assert logged_in.get("/").status_code == 200
    clock.now += 12 * 3600 + 1
    r = logged_in.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert logged_in.get("/api/reindex").status_code == 401


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_state_changing_route_needs_the_csrf_token(logged_in: TestClient, token: str | None) -> None:
    checked = 0
    for method, path in _routes(logged_in):
        if method not in UNSAFE:
            continue
        data = {} if token is None else {"csrf_token": token}
        r = logged_in.request(method, path, data=data, follow_redirects=False)
        assert r.status_code == 403, (method, path, r.status_code)
        checked += 1
    assert checked >= 9
    assert logged_in.get("/").status_code == 200  # still logged in: the refusal changed nothing


def test_csrf_header_is_accepted(logged_in: TestClient) -> None:
    token = csrf_of(logged_in.get("/").text)
    r = logged_in.post("/handoffs/release", data={"user_id": "telegram:9"}, headers={"X-CSRF-Token": token},
                       follow_redirects=False)
    assert r.status_code == 303


def test_console_refuses_to_start_without_password(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from click.testing import CliRunner

    from bot.cli.main import cli

    r = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "console"], env={"SHOPBOT_CONSOLE_PASSWORD": ""})
    assert r.exit_code != 0 and "SHOPBOT_CONSOLE_PASSWORD" in r.output
    from tests.console.conftest import make_settings

    with pytest.raises(ValueError, match="SHOPBOT_CONSOLE_PASSWORD"):
        create_app(make_settings(tmp_path).model_copy(update={"console_password": None}))
