"""Team tests run on every backend pair: mark them `team_too` and take `store` (tests/conftest.py
gives the [local] and [team] variants: a folder + SQLite, and SeaweedFS + PostgreSQL)."""
