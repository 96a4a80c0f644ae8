"""The compose deployment on PostgreSQL (docker-compose.postgres.yml) on a real Docker engine.

The postgres service runs tests/compose/postgres (Debian's PostgreSQL behind the official image's entrypoint
interface) where no registry is reachable. Fixtures: conftest.py.
"""

import json

import pytest
from helpers import wait_for

pytestmark = pytest.mark.timeout(900)

# Run as a job: everything it tries with the queue's own URL (QUEUECTL_DB, which a job can always read).
ESCAPE_ATTEMPTS = r"""python3 - <<'EOF'
import os
import psycopg

url = os.environ.get("QUEUECTL_DB") or "{url}"  # the worker's own URL, as a job reads it; else the test's
attempts = {
    "copy-to-program": "COPY (SELECT 1) TO PROGRAM 'touch /tmp/escaped'",
    "alter-role-superuser": "ALTER ROLE queuectl SUPERUSER",
    "create-superuser": "CREATE ROLE intruder LOGIN SUPERUSER PASSWORD 'x'",
    "read-server-file": "SELECT pg_read_file('/etc/passwd')",
    "create-in-public": "CREATE TABLE public.intruder (x int)",
    "create-database": "CREATE DATABASE intruder",
}
for name, sql in attempts.items():
    with psycopg.connect(url, autocommit=True) as connection:
        try:
            connection.execute(sql)
            print(name, "ALLOWED")
        except psycopg.Error as error:
            print(name, "refused", type(error).__name__)
password = url.split("@")[0].rsplit(":", 1)[1]
try:
    psycopg.connect(f"postgresql://postgres:{password}@postgres:5432/queuectl", connect_timeout=5).close()
    print("superuser-login ALLOWED")
except psycopg.Error as error:
    print("superuser-login refused", type(error).__name__)
EOF"""


def test_a_job_cannot_use_the_queues_role_to_run_programs_or_become_superuser(postgres_deployment):
    password = postgres_deployment.env["QUEUECTL_POSTGRES_PASSWORD"]
    url = f"postgresql://queuectl:{password}@postgres:5432/queuectl"
    job = postgres_deployment.run_job(ESCAPE_ATTEMPTS.replace("{url}", url))
    lines = job["history"][-1]["output"].splitlines()
    assert job["state"] == "completed", job
    assert len(lines) == 7 and all(" refused " in line for line in lines), lines
    assert all("InsufficientPrivilege" in line for line in lines[:6]), lines
    # And on the server itself: no program ran, the role is what the init script made it, no intruder role.
    assert postgres_deployment.exec("postgres", "test", "-e", "/tmp/escaped", check=False).returncode == 1
    roles = postgres_deployment.exec(
        "postgres", "psql", "-U", "postgres", "-d", "queuectl", "-tAc",
        "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname IN ('queuectl', 'intruder')",
    ).stdout.split()
    assert roles == ["queuectl|f|f|f"], roles
    owner = postgres_deployment.exec(
        "postgres", "psql", "-U", "postgres", "-d", "queuectl", "-tAc",
        "SELECT DISTINCT tableowner || ' ' || schemaname FROM pg_tables WHERE tablename = 'jobs'",
    ).stdout.split()
    assert owner == ["queuectl", "queuectl"]  # the queue's tables live in its own schema, owned by its role


def test_the_queue_works_on_postgresql(postgres_deployment):
    lines = "".join(json.dumps({"id": f"p{n}", "command": f"echo ran p{n}"}) + "\n" for n in range(20))
    assert postgres_deployment.cli("enqueue", "-", input=lines).stdout.strip() == "20"
    wait_for(lambda: postgres_deployment.api("/api/v1/stats")[1]["jobs"]["completed"] >= 20, 120,
             message="20 jobs to complete")
    status, body = postgres_deployment.api("/api/v1/jobs?state=completed&limit=100")
    outputs = {job["id"]: job for job in body["jobs"] if job["id"].startswith("p")}
    assert status == 200 and len(outputs) == 20
    assert len(json.loads(postgres_deployment.cli("worker", "list", "--json").stdout)) == 2


def test_under_postgresql_neither_the_api_nor_the_workers_mount_the_data_volume(postgres_deployment):
    for service in ("api", "worker"):
        mounts = postgres_deployment.inspect(service)["Mounts"]
        assert [mount for mount in mounts if mount["Type"] == "volume"] == [], (service, mounts)
    # /data is only the image's empty (and read-only) mount point here.
    job = postgres_deployment.run_job("pwd; ls -A /data; touch /data/x 2>/dev/null || echo read-only")
    assert job["history"][-1]["output"].split() == ["/jobs", "read-only"]
