"""Domain-free building blocks: database, errors, jobs, cache, rate limits, logging."""
