"""The staff audit log: who did what to which record, before and after, and reading it."""
