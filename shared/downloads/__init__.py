"""Preparing downloads of backups as Full Snapshot archives (or the dump alone)."""
