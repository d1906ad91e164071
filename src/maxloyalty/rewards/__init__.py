"""The reward catalogue: items guests buy with points."""
