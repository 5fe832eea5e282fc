"""The backup engine: what a backup stores, and how it is made."""
