"""The two-level cache (L1 in process, L2 in Redis), invalidated by tags from domain events."""
