"""Fixtures of the compose tests: one deployment per module, on the real engine (skipped without one)."""

import secrets

import pytest
from compose_support import POSTGRES_FILES, POSTGRES_TEST_IMAGE, Deployment, build_postgres_test_image, missing_engine


@pytest.fixture(scope="module")
def deployment():
    """The SQLite deployment (docker-compose.yml) with 3 workers."""
    reason = missing_engine()
    if reason:
        pytest.skip(reason)
    deployment = Deployment()
    try:
        deployment.start(workers=3)
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(scope="module")
def postgres_deployment():
    """The PostgreSQL deployment (both compose files) with 2 workers, on the stand-in postgres image."""
    reason = missing_engine()
    if reason:
        pytest.skip(reason)
    build_postgres_test_image()
    deployment = Deployment(POSTGRES_FILES, env={"POSTGRES_IMAGE": POSTGRES_TEST_IMAGE,
                                                 "QUEUECTL_POSTGRES_PASSWORD": "pw" + secrets.token_hex(12)})
    try:
        deployment.start(workers=2)
        yield deployment
    finally:
        deployment.stop()
