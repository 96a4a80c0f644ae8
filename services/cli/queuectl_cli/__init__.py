"""The `queuectl` command line."""
