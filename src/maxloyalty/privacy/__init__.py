"""A person's own data: export, erasure, and re-encryption under a new key."""
