"""RFC 6962 / RFC 9162 Merkle tree over SHA-256, as pure functions.

Domain separation as in the RFCs: a leaf hashes ``0x00 || data``, an interior node
``0x01 || left || right``, and the empty tree is ``SHA-256("")``. Trees are append-only:
the root of the first ``n`` leaves (``MTH(D[n])``) never changes when leaves are added.

Three layers:

- ``leaf_hash``, ``node_hash``, ``root`` (MTH of a list of leaf hashes) and ``mth`` (of raw
  leaves): the definitions.
- ``MerkleAccumulator``: the append path. It keeps one hash per set bit of the tree size
  (the roots of the perfect subtrees the tree decomposes into), so appending is O(1)
  amortised and memory O(log n). Its state serialises to bytes, so it survives restarts.
- ``MerkleReader`` / ``inclusion_proof`` / ``consistency_proof``: proofs computed from the
  stored leaf hashes, fetched through a callable ``get_leaf_hashes(start, end)`` that
  returns the hashes of leaves ``start .. end-1``. Every proof hash is the root of a
  subtree; the roots of *perfect* aligned subtrees never change, so they can be cached
  (any ``get``/``__setitem__`` mapping keyed by ``(level, index)``, e.g. a dict or a table
  the store fills from ``MerkleAccumulator(node_sink=...)``). With such a cache a proof in a
  tree of n leaves reads O(log n) cached nodes plus at most a few small leaf ranges.

The verifiers ``verify_inclusion`` and ``verify_consistency`` follow RFC 9162 §2.1.3.2 and
§2.1.4.2 step by step; they return ``False`` (never raise) on any malformed input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from hashlib import sha256
from typing import Final, Protocol

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = sha256(b"").digest()
"""MTH of the empty tree (RFC 6962 §2.1)."""

LeafHashes = Callable[[int, int], Sequence[bytes]]
"""``get_leaf_hashes(start, end)``: the leaf hashes of leaves ``start .. end-1``, in order."""

CHUNK_LEVEL: Final = 10
"""Subtrees of at most 2**CHUNK_LEVEL leaves are computed from one leaf-range fetch."""

_STATE_VERSION: Final = b"SWM1"


class NodeCache(Protocol):
    """Roots of perfect, aligned subtrees keyed by ``(level, index)``: the subtree of
    leaves ``index * 2**level .. (index+1) * 2**level - 1``. A dict satisfies it."""

    def get(self, key: tuple[int, int], /) -> bytes | None: ...

    def __setitem__(self, key: tuple[int, int], value: bytes, /) -> None: ...


def leaf_hash(data: bytes) -> bytes:
    """The RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """The RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of a tree given its leaf hashes (already ``leaf_hash``-ed)."""
    acc = MerkleAccumulator()
    acc.extend(leaf_hashes)
    return acc.root()


def mth(entries: Iterable[bytes]) -> bytes:
    """MTH of a tree given its raw leaf data (RFC 6962 §2.1)."""
    return root([leaf_hash(e) for e in entries])


class MerkleAccumulator:
    """The append side of the tree: current root at any time, O(log n) state.

    ``_stack`` holds the roots of the perfect subtrees the tree decomposes into, largest
    (leftmost) first: one per set bit of ``size``. ``node_sink``, when given, receives every
    perfect subtree root completed at a level >= ``sink_min_level`` as ``(level, index,
    hash)``, which is what a ``NodeCache`` for ``MerkleReader`` needs.
    """

    __slots__ = ("_sink", "_sink_min", "_size", "_stack")

    def __init__(self, size: int = 0, stack: Sequence[bytes] = (), *,
                 node_sink: Callable[[int, int, bytes], None] | None = None,
                 sink_min_level: int = 8) -> None:
        if size < 0 or len(stack) != size.bit_count() or any(len(h) != HASH_SIZE for h in stack):
            raise ValueError("accumulator stack does not match its size")
        self._size = size
        self._stack = list(stack)
        self._sink = node_sink
        self._sink_min = max(1, sink_min_level)

    @property
    def size(self) -> int:
        return self._size

    def append(self, h: bytes) -> None:
        """Append one leaf hash."""
        stack = self._stack
        n = self._size
        self._size = n + 1
        if self._sink is None:
            while n & 1:  # each trailing 1 bit of the old size closes one perfect subtree
                h = sha256(b"\x01" + stack.pop() + h).digest()
                n >>= 1
        else:
            level = 0
            while n & 1:
                h = sha256(b"\x01" + stack.pop() + h).digest()
                n >>= 1
                level += 1
                if level >= self._sink_min:
                    self._sink(level, (self._size >> level) - 1, h)
        stack.append(h)

    def extend(self, hashes: Iterable[bytes]) -> None:
        """Append many leaf hashes: the batch is folded level by level (one comprehension per
        level instead of a Python loop per leaf), giving exactly the state and the sink nodes
        of appending them one by one (sink calls come grouped by level)."""
        cur = hashes if isinstance(hashes, list) else list(hashes)
        if not cur:
            return
        stack = self._stack
        n = self._size
        self._size = n + len(cur)
        sink, low = self._sink, self._sink_min
        leftovers: list[bytes] = []  # the new lone node of each level below where `cur` ran out
        level = 0
        while cur:
            pos = n >> level  # index, at this level, of the first node of `cur` (before any merge)
            if pos & 1:  # a lone left sibling waits on the stack: it pairs with cur[0]
                cur = [stack.pop(), *cur]
                pos -= 1
            if len(cur) & 1:
                leftovers.append(cur[-1])
                it = iter(cur[:-1])
            else:
                it = iter(cur)
            cur = [sha256(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=True)]
            level += 1
            if sink is not None and level >= low and cur:
                first = pos >> 1
                for j, h in enumerate(cur):
                    sink(level, first + j, h)
            elif not cur:
                break
        leftovers.reverse()
        stack.extend(leftovers)

    def root(self) -> bytes:
        """MTH of everything appended so far."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        r = stack[-1]
        for i in range(len(stack) - 2, -1, -1):
            r = sha256(b"\x01" + stack[i] + r).digest()
        return r

    def copy(self) -> MerkleAccumulator:
        """An independent accumulator at the same state (without the sink)."""
        return MerkleAccumulator(self._size, self._stack)

    def to_bytes(self) -> bytes:
        """Serialised state: ``b"SWM1" || size (8 bytes, big endian) || stack hashes``."""
        return _STATE_VERSION + self._size.to_bytes(8, "big") + b"".join(self._stack)

    @classmethod
    def from_bytes(cls, data: bytes, *, node_sink: Callable[[int, int, bytes], None] | None = None,
                   sink_min_level: int = 8) -> MerkleAccumulator:
        """Restore a state written by ``to_bytes``; ``ValueError`` if it is malformed."""
        if len(data) < 12 or data[:4] != _STATE_VERSION:
            raise ValueError("not a stackwatch Merkle accumulator state")
        size = int.from_bytes(data[4:12], "big")
        body = data[12:]
        if len(body) != HASH_SIZE * size.bit_count():
            raise ValueError("accumulator state has the wrong length for its size")
        stack = [body[i:i + HASH_SIZE] for i in range(0, len(body), HASH_SIZE)]
        return cls(size, stack, node_sink=node_sink, sink_min_level=sink_min_level)


def _fold_perfect(hashes: Sequence[bytes]) -> bytes:
    """Root of a perfect tree (len is a power of two), bottom-up."""
    level = list(hashes)
    while len(level) > 1:
        level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0]


class MerkleReader:
    """Subtree roots and proofs over stored leaf hashes, with an optional node cache."""

    def __init__(self, get_leaf_hashes: LeafHashes, cache: NodeCache | None = None,
                 cache_min_level: int = 8) -> None:
        self._get = get_leaf_hashes
        self._cache = cache
        self._cache_min = cache_min_level

    def _leaves(self, start: int, end: int) -> Sequence[bytes]:
        hashes = self._get(start, end)
        if len(hashes) != end - start:
            raise LookupError(f"leaf hashes {start}..{end - 1}: got {len(hashes)} of {end - start}")
        return hashes

    def perfect_root(self, level: int, index: int) -> bytes:
        """Root of the perfect subtree of leaves ``index*2**level .. (index+1)*2**level - 1``."""
        cache = self._cache
        cacheable = cache is not None and level >= self._cache_min
        if cacheable:
            hit = cache.get((level, index))  # type: ignore[union-attr]
            if hit is not None:
                return hit
        if level <= CHUNK_LEVEL:
            h = _fold_perfect(self._leaves(index << level, (index + 1) << level))
        else:
            h = node_hash(self.perfect_root(level - 1, 2 * index),
                          self.perfect_root(level - 1, 2 * index + 1))
        if cacheable:
            cache[(level, index)] = h  # type: ignore[index]
        return h

    def subtree_root(self, start: int, end: int) -> bytes:
        """MTH of leaves ``start .. end-1``. Perfect subtrees at aligned offsets (all the RFC
        decomposition ever asks for) go through the cache; any other range is still exact."""
        n = end - start
        if n <= 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and start % n == 0:
            return self.perfect_root(n.bit_length() - 1, start // n)
        # A small non-perfect range is one fetch; a bigger one is split so that its perfect
        # parts come from the cache (when there is one) instead of being re-read.
        if n <= 1 << (CHUNK_LEVEL if self._cache is None else min(CHUNK_LEVEL, self._cache_min)):
            return root(self._leaves(start, end))
        k = _split(n)
        return node_hash(self.subtree_root(start, start + k), self.subtree_root(start + k, end))

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` leaves."""
        return self.subtree_root(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[size]): sibling subtree roots, leaf level first."""
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is not in a tree of size {size}")
        siblings: list[bytes] = []
        start, end, m = 0, size, index
        while end - start > 1:
            k = _split(end - start)
            if m < k:
                siblings.append(self.subtree_root(start + k, end))
                end = start + k
            else:
                siblings.append(self.subtree_root(start, start + k))
                start += k
                m -= k
        siblings.reverse()
        return siblings

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        """RFC 6962 PROOF(old_size, D[new_size]); empty when the sizes are equal or old is 0."""
        if not 0 <= old_size <= new_size:
            raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
        if old_size == 0 or old_size == new_size:
            return []
        nodes: list[bytes] = []
        start, end, m, whole = 0, new_size, old_size, True
        while m != end - start:  # SUBPROOF(m, D[start:end], whole)
            k = _split(end - start)
            if m <= k:
                nodes.append(self.subtree_root(start + k, end))
                end = start + k
            else:
                nodes.append(self.subtree_root(start, start + k))
                start += k
                m -= k
                whole = False
        if not whole:
            nodes.append(self.subtree_root(start, end))
        nodes.reverse()
        return nodes


def inclusion_proof(leaf_index: int, tree_size: int, get_leaf_hashes: LeafHashes,
                    cache: NodeCache | None = None) -> list[bytes]:
    """Inclusion proof of leaf ``leaf_index`` (0-based) in the tree of ``tree_size`` leaves."""
    return MerkleReader(get_leaf_hashes, cache).inclusion_proof(leaf_index, tree_size)


def consistency_proof(old_size: int, new_size: int, get_leaf_hashes: LeafHashes,
                      cache: NodeCache | None = None) -> list[bytes]:
    """Consistency proof that the tree of ``old_size`` leaves is a prefix of ``new_size``."""
    return MerkleReader(get_leaf_hashes, cache).consistency_proof(old_size, new_size)


def _well_formed(*hashes: bytes) -> bool:
    return all(isinstance(h, bytes) and len(h) == HASH_SIZE for h in hashes)


def root_from_inclusion_proof(leaf_hash: bytes, index: int, size: int,
                              proof: Sequence[bytes]) -> bytes | None:
    """RFC 9162 §2.1.3.2 steps 1-4: the root the proof leads to, or None if it cannot."""
    if not (0 <= index < size) or not _well_formed(leaf_hash, *proof):
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = sha256(b"\x01" + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` show leaf ``index`` with ``leaf_hash`` is in ``root``?"""
    computed = root_from_inclusion_proof(leaf_hash, index, size, proof)
    return computed is not None and _well_formed(root) and computed == root


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree (old_size, old_root) a prefix of (new_size, new_root)?

    Edge cases the RFC leaves to the caller: equal sizes need an empty proof and equal
    roots; old size 0 needs an empty proof and the empty-tree root.
    """
    if not (0 <= old_size <= new_size) or not _well_formed(old_root, new_root, *proof):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:  # step 1
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # step 2: old tree is a perfect subtree: its root is implied
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = sha256(b"\x01" + c + fr).digest()
            sr = sha256(b"\x01" + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    return fr == old_root and sr == new_root and sn == 0  # step 7
