"""Long work as checkpointed, resumable operations: restores, downloads, uploads."""
