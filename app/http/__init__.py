"""The HTTP edge: the GraphQL endpoint, health checks and request plumbing."""
