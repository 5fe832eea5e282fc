"""Database dumps stored as content-defined chunks, and the one reader every use of a dump goes through.

A backup's dump (``pg_dump -Fc -O -x --compress=0``) is cut by FastCDC into chunks; each is compressed
with zstd and written once, named by the SHA-256 of its content, into the namespace's content store
beside the file documents (``content/{namespace}/chunks/{sha256}``). The backup's folder holds the
chunk list (``db.chunks``, the chunks in dump order) and the chunk index (``db.chunkindex``, each chunk's
object name once, in name order, for pruning's mark-and-sweep). Backups made before keep one dump blob
(``db.backup``); ``reader.DumpReader`` reads both layouts, verifying every chunk as it streams.
"""
