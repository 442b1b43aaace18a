"""Repositories own the SQL. Each function takes the connection to use, so the caller decides
whether it runs on a pooled read connection or inside a unit of work's transaction."""
