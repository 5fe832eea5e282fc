"""The Mendix Full Snapshot archive: .metadata, db/db.backup and tree/xx/yy/<uuid>, as tar.gz."""
