"""Restoring a backup into an environment, as a checkpointed operation."""
