"""Who is calling: principals, roles, tokens, and the route-level authorization rules."""
