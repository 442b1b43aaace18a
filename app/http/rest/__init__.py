"""The versioned REST API (/api/v1, /api/v2): an edge over the same use cases as GraphQL."""
