"""No request, however malformed, gets a 500 or a traceback: 400/404/405/413 with {"error": "..."}."""

import logging

import pytest
from api_support import AUTH, TOKEN
from queuectl_api import create_app
from queuectl_api.config import MAX_BODY_BYTES


def assert_json_error(response, status):
    assert response.status_code == status, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert isinstance(body, dict) and isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize("body", [
    b"{", b"{'command': 'true'}", b'{"command": "true",}', b"\xff\xfe{}", b"[" * 100_000 + b"]" * 100_000,
    b'{"command": "true"} trailing', b"", b"   ", b'{"command": "true", "command": 5}', b"NaN",
    b'{"command": "\\ud800"}', b'{"command": "a\\u0000b"}',
])
def test_malformed_job_bodies_answer_400(client, body):
    assert_json_error(client.post("/api/v1/jobs", headers=AUTH, data=body, content_type="application/json"), 400)


@pytest.mark.parametrize("body", [b"{", b"[]", b'{"max_retries": {"a": 1}}', b'{"max_retries": [1]}',
                                  b'{"lease_timeout": 1e400}', b'{"backoff_base": NaN}'])
def test_malformed_settings_bodies_answer_400(client, body):
    assert_json_error(client.put("/api/v1/settings", headers=AUTH, data=body, content_type="application/json"), 400)


@pytest.mark.parametrize("query", [
    "limit=0", "limit=1001", "limit=-1", "limit=abc", "limit=1.5", "limit=", "limit=%201", "limit=99999999999999999999",
    "offset=-1", "offset=x", "offset=10000000000000000000000", "state=done", "state=", "state=PENDING",
    "sort=seq", "sort=id;drop", "order=up", "q=" + "x" * 201, "q=a%00b", "q=a%09b", "colour=red",
    "limit=5&limit=6", "state=dead&state=pending",
])
def test_bad_query_parameters_answer_400(client, query):
    assert_json_error(client.get(f"/api/v1/jobs?{query}", headers=AUTH), 400)


@pytest.mark.parametrize("url", ["/api/v1/stats?x=1", "/api/v1/throughput?minutes=0", "/api/v1/throughput?minutes=1441",
                                 "/api/v1/workers?verbose=1", "/api/v1/jobs/a/retry?force=1"])
def test_unexpected_parameters_on_other_routes_answer_400(client, url):
    method = "POST" if url.startswith("/api/v1/jobs/a/retry") else "GET"
    assert_json_error(client.open(url, method=method, headers=AUTH), 400)


def test_a_body_over_the_limit_answers_413(client):
    big = b'{"command": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'
    assert_json_error(client.post("/api/v1/jobs", headers=AUTH, data=big, content_type="application/json"), 413)
    assert_json_error(client.put("/api/v1/settings", headers=AUTH, data=big, content_type="application/json"), 413)


@pytest.mark.parametrize("url", ["/nope", "/api/v1/nope", "/api/v2/stats", "/api/v1/jobs/a/b/c", "/static/nope.js",
                                 "/api/v1/jobs/%ff", "/api/v1/jobs/" + "x" * 5000])
def test_unknown_urls_answer_404_in_json(client, url):
    assert_json_error(client.get(url, headers=AUTH), 404)


@pytest.mark.parametrize("method, url", [
    ("DELETE", "/api/v1/jobs"), ("PUT", "/api/v1/jobs/a"), ("GET", "/api/v1/workers/stop"), ("POST", "/api/v1/stats"),
    ("PATCH", "/api/v1/settings"), ("POST", "/healthz"), ("DELETE", "/"),
])
def test_a_wrong_method_answers_405_with_allow(client, method, url):
    response = client.open(url, method=method, headers=AUTH)
    assert_json_error(response, 405)
    assert response.headers["Allow"]


@pytest.mark.parametrize("job_id", ["%3Cscript%3E", "..", "%20", "a%22b", "%E2%98%83", "%00", "a'b"])
def test_odd_job_ids_in_the_path_answer_404(client, job_id):
    assert_json_error(client.get(f"/api/v1/jobs/{job_id}", headers=AUTH), 404)
    assert_json_error(client.post(f"/api/v1/jobs/{job_id}/retry", headers=AUTH), 404)


def test_a_malformed_login_form_is_handled(client):
    assert client.post("/login", data=b"\xff\xfe", content_type="application/x-www-form-urlencoded").status_code == 400
    assert client.post("/login", data={"token": "x" * 100_000}).status_code in (400, 413)


def test_a_database_that_is_not_sqlite_answers_503_not_500(tmp_path):

    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database" * 100)
    client = create_app({"QUEUECTL_DB": str(broken), "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    assert_json_error(client.get("/healthz"), 503)
    assert_json_error(client.get("/api/v1/stats", headers=AUTH), 503)
    assert_json_error(client.get("/metrics"), 503)


def test_a_database_in_a_missing_directory_answers_503(tmp_path):

    client = create_app({"QUEUECTL_DB": str(tmp_path / "missing" / "q.db"), "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    response = client.get("/healthz")
    assert_json_error(response, 503)


@pytest.mark.parametrize("location", ["sqlite-missing-dir", "sqlite-not-a-database", "postgres-refused"])
def test_the_public_routes_say_the_database_is_down_without_naming_it_and_the_log_does(tmp_path, caplog, location):
    secret_parts = []
    if location == "sqlite-missing-dir":
        database = str(tmp_path / "hidden-dir-name" / "q.db")
        secret_parts = ["hidden-dir-name", str(tmp_path)]
    elif location == "sqlite-not-a-database":
        database = str(tmp_path / "hidden-file-name.db")
        (tmp_path / "hidden-file-name.db").write_bytes(b"this is not a database" * 100)
        secret_parts = ["hidden-file-name", str(tmp_path)]
    else:
        pytest.importorskip("psycopg")
        database = "postgresql://hidden_user:hidden-password@127.0.0.1:1/hidden_db"  # nothing listens on port 1
        secret_parts = ["hidden_user", "hidden-password", "127.0.0.1", "hidden_db", "postgresql"]
    client = create_app({"QUEUECTL_DB": database, "QUEUECTL_API_TOKEN": TOKEN}).test_client()
    with caplog.at_level(logging.WARNING, logger="queuectl.api"):
        for url in ("/healthz", "/metrics"):
            response = client.get(url)
            assert_json_error(response, 503)
            body = response.get_data(as_text=True)
            assert "the database does not answer" in body
            for part in secret_parts:
                assert part not in body, (url, part)
    # The operator still learns why, from the server's log (where PostgreSQL passwords are masked).
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert secret_parts[0] in logged
    assert "hidden-password" not in logged
