"""Who is asking: principals and scopes."""
