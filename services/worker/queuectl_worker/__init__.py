"""The queuectl worker service: a supervisor of worker processes that claim and run jobs."""
