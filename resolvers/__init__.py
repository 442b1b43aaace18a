"""The GraphQL layer: Strawberry types and their resolvers. Resolvers read through the
request's DataLoaders and call use cases; they never touch SQL."""
