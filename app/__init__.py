"""ordergraph: a GraphQL API for users, orders, order items and products."""
