"""The peers measured on the same jobs: Huey (SqliteHuey) and RQ (Redis)."""
