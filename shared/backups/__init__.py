"""The backup engine: what a snapshot stores, and how it is made."""
