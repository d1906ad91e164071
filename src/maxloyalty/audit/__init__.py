"""The activity log: who changed what, from where, with before/after snapshots."""
