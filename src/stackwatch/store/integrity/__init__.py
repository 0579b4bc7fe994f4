"""The integrity layer of record format v2, apart from any database driver.

``io.LedgerIO`` is the narrow interface it reads and writes through (block hashes and data,
the chain and Merkle state, cached Merkle nodes, checkpoints, signers); ``sqlite_io`` is the
embedded store's implementation of it, and a PostgreSQL backend implements the same methods.
``blocks`` is the block codec (records framed, compressed, one Merkle leaf and one chain link
per block), ``ledger`` the writer's chain + Merkle state, ``verify`` the checks that name the
first bad block and the first bad record in it, ``proofs`` record inclusion proofs (the
block's Merkle proof plus the record's offset and the block's record digests).
"""
