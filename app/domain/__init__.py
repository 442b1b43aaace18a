"""Entities, value objects and rules. No framework imports and no I/O."""
