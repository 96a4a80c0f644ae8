"""queuectl's shared package: everything the CLI, the worker and the API agree on.

It imports only the standard library (psycopg too, for PostgreSQL only), so every service can depend on it cheaply.
The store (store/) is the only code that touches the database; the job's states and rules are in lifecycle.
"""
