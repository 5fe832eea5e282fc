"""File-document captures, for environments with point-in-time recovery."""
