"""Ingesting uploaded archives as backups."""
