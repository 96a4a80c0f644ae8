"""GET /api/v1/jobs/ID pages a job's history (issue 13, item 10): the latest 100 runs by default, `history_total`,
`history_limit` and `history_offset`; bad values are a 400."""

import pytest
from api_support import AUTH
from queuectl_core.store import open_store
from queuectl_core.validation import check_job
from test_history_paging import attempts, job_with_runs


def test_the_api_pages_a_jobs_history(client):
    store = open_store(client.application.config["QUEUECTL_DB"])
    job_with_runs(store, "long", 105)
    store.close()
    record = client.get("/api/v1/jobs/long", headers=AUTH).get_json()
    assert attempts(record) == list(range(6, 106)) and record["history_total"] == 105  # the latest 100 by default
    page = client.get("/api/v1/jobs/long?history_limit=4&history_offset=100", headers=AUTH).get_json()
    assert attempts(page) == [2, 3, 4, 5] and page["history_total"] == 105
    assert attempts(client.get("/api/v1/jobs/long?history_offset=104", headers=AUTH).get_json()) == [1]
    assert attempts(client.get("/api/v1/jobs/long?history_limit=1000", headers=AUTH).get_json()) == list(
        range(1, 106))


@pytest.mark.parametrize("query", ["history_limit=0", "history_limit=1001", "history_limit=ten", "history_limit=",
                                   "history_offset=-1", "history_offset=1.5", "history_limit=2&history_limit=3",
                                   "history=5"])
def test_bad_history_paging_is_a_400_that_says_why(client, query):
    store = open_store(client.application.config["QUEUECTL_DB"])
    store.enqueue(check_job({"command": "true", "id": "one"}))
    store.close()
    response = client.get(f"/api/v1/jobs/one?{query}", headers=AUTH)
    assert response.status_code == 400
    assert "history" in response.get_json()["error"]
