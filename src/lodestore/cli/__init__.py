"""The `lode` command line."""
