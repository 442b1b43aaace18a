"""The data layer's plumbing: URLs, engine, table definitions and migrations."""
