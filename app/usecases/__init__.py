"""Use cases: one per mutation, each in its own unit of work. Resolvers call only these."""
