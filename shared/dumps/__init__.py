"""Database dumps stored as content-defined chunks, and the one reader every use of a dump goes through.

A backup's dump (``pg_dump -Fc -O -x --compress=0``) is cut by FastCDC into chunks, each named by the
SHA-256 of its content and compressed with zstd; new ones are packed into write-once objects of a few MiB in
the namespace's content store beside the file documents (``content/{namespace}/packs/{id}``). The backup's
folder holds the chunk list (``db.chunks``, the chunks in dump order, each with its pack and offset) and the
chunk index (``db.chunkindex``, each object once, in name order, for pruning's mark-and-sweep). Backups made
before chunks keep one dump blob (``db.backup``), those made before packs one object per chunk;
``reader.DumpReader`` reads every layout, verifying every chunk as it streams.
"""
