"""queuectl's shared package: everything the CLI, the worker and the API agree on.

It imports only the standard library, so every service can depend on it cheaply.
"""

STATES = ("pending", "processing", "completed", "failed", "dead", "cancelled")
