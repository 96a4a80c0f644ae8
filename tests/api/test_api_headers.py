"""Security headers on every answer: a CSP without inline scripts, no framing, no sniffing, no caching of data."""

import pytest
from api_support import AUTH


@pytest.mark.parametrize("url", ["/", "/login", "/jobs", "/api/v1/stats", "/healthz", "/api/v1/nope",
                                 "/static/app.css"])
def test_every_answer_forbids_framing_and_inline_scripts(logged_in, url):
    client, _ = logged_in
    response = client.get(url, headers=AUTH if url.startswith("/api") else {})
    policy = response.headers["Content-Security-Policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["script-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_pages_and_api_answers_are_not_cached(logged_in):
    client, _ = logged_in
    assert client.get("/").headers["Cache-Control"] == "no-store"
    assert client.get("/api/v1/stats").headers["Cache-Control"] == "no-store"


def test_pages_hold_no_inline_script_or_style(logged_in):
    client, _ = logged_in
    for page in ("/", "/jobs", "/jobs/x", "/enqueue", "/settings", "/login"):
        html = client.get(page).get_data(as_text=True)
        assert "<script>" not in html and "<script type=\"module\">" not in html
        assert " style=" not in html and "<style" not in html
        assert " onclick=" not in html and "javascript:" not in html
