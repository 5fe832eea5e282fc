"""Restoring a snapshot into an environment, as a checkpointed operation."""
