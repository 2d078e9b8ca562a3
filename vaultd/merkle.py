"""RFC 6962 Merkle tree hashing, proofs and their verification.

Pure functions, no I/O. The log's stored form is every *complete*, aligned
subtree hash: node ``(k, i)`` is ``MTH(D[i*2^k : (i+1)*2^k])``, level 0 being
the leaf hashes. Appending a leaf completes at most ``1 + log2 n`` nodes
(:func:`nodes_completed_by_append`); any root or proof then needs only
``O(log n)`` stored nodes, fetched with one :meth:`NodeReader.get_nodes` call.

Definitions follow RFC 6962 section 2.1 (``MTH``, ``PATH``, ``PROOF``); the
verifiers follow the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.

A node the reader does not have, or returns with the wrong length, is
reported as :class:`~vaultd.errors.LogTamperedError`: callers only ask for
ranges inside the log they hold, so a missing node means the stored log is
incomplete. Bad arguments (an index past the end, an unaligned range) raise
:class:`~vaultd.errors.UsageError`. The ``verify_*`` functions never raise for
bad proofs: they return ``False``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Protocol

from vaultd.errors import LogTamperedError, UsageError
from vaultd.i18n import _

Hash = bytes
"""A 32-byte SHA-256 value."""

NodeKey = tuple[int, int]
"""``(level, index)`` of a complete aligned subtree."""

HASH_SIZE = 32
EMPTY_ROOT: Hash = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class NodeReader(Protocol):
    """Batch lookup of stored subtree hashes.

    Returns the hashes it has; keys it does not have are left out.
    """

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, Hash]: ...


def hash_leaf(data: bytes) -> Hash:
    """RFC 6962 leaf hash: ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def hash_children(left: Hash, right: Hash) -> Hash:
    """RFC 6962 interior node hash: ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# --- range decomposition -------------------------------------------------------


def _largest_power_of_two_below(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    return 1 << ((n - 1).bit_length() - 1)


def _range_keys(start: int, end: int) -> list[NodeKey]:
    """The complete aligned nodes whose concatenation is ``D[start:end]``.

    Ordered left to right, sizes strictly decreasing. ``MTH(D[start:end])`` is
    their right fold. Only ranges whose start is a multiple of the largest
    power of two not above their length decompose this way; every range that
    RFC 6962 roots and proofs use is one of them.
    """
    length = end - start
    if start < 0 or length <= 0:
        raise UsageError(_("empty or negative Merkle range [%d, %d)") % (start, end))
    top = 1 << (length.bit_length() - 1)
    if start % top:
        raise UsageError(
            _("Merkle range [%d, %d) is not aligned to complete subtrees") % (start, end)
        )
    keys: list[NodeKey] = []
    pos = start
    for level in range(length.bit_length() - 1, -1, -1):
        if length >> level & 1:
            keys.append((level, pos >> level))
            pos += 1 << level
    return keys


def _fetch(reader: NodeReader, keys: Sequence[NodeKey]) -> dict[NodeKey, Hash]:
    """One ``get_nodes`` call for all ``keys``; every one must come back."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return {}
    found = reader.get_nodes(wanted)
    out: dict[NodeKey, Hash] = {}
    for key in wanted:
        value = found.get(key)
        if value is None or len(value) != HASH_SIZE:
            what = _("missing") if value is None else _("malformed")
            raise LogTamperedError(
                _("%s Merkle node: level %d, index %d") % (what, key[0], key[1]),
                hint=_("the stored audit log is incomplete; run a full log verification"),
            )
        out[key] = bytes(value)
    return out


def _fold(keys: Sequence[NodeKey], nodes: Mapping[NodeKey, Hash]) -> Hash:
    """Right fold of decreasing-size subtrees: ``H(a, H(b, H(c, d)))``."""
    acc = nodes[keys[-1]]
    for key in reversed(keys[:-1]):
        acc = hash_children(nodes[key], acc)
    return acc


def _ranges_hashes(ranges: Sequence[tuple[int, int]], reader: NodeReader) -> list[Hash]:
    """``MTH`` of each range, with one batched reader call for all of them."""
    per_range = [_range_keys(start, end) for start, end in ranges]
    nodes = _fetch(reader, [key for keys in per_range for key in keys])
    return [_fold(keys, nodes) for keys in per_range]


# --- building --------------------------------------------------------------------


def nodes_completed_by_append(
    index: int, leaf_hash: Hash, reader: NodeReader
) -> list[tuple[int, int, Hash]]:
    """Nodes that appending leaf ``index`` (0-based) completes, to be stored.

    Always ``(0, index, leaf_hash)``; then ``(k, index >> k)`` for every ``k``
    with ``(index + 1) % 2^k == 0``. The left siblings come from ``reader``
    (one call).
    """
    if index < 0:
        raise UsageError(_("leaf index must not be negative: %d") % index)
    if len(leaf_hash) != HASH_SIZE:
        raise UsageError(_("a leaf hash must be %d bytes, not %d") % (HASH_SIZE, len(leaf_hash)))
    levels = _trailing_ones(index)
    siblings = [(k, (index >> k) - 1) for k in range(levels)]
    nodes = _fetch(reader, siblings)
    out = [(0, index, bytes(leaf_hash))]
    acc = bytes(leaf_hash)
    for k, key in enumerate(siblings):
        acc = hash_children(nodes[key], acc)
        out.append((k + 1, index >> (k + 1), acc))
    return out


def _trailing_ones(n: int) -> int:
    return ((n ^ (n + 1)).bit_length()) - 1


# --- roots -----------------------------------------------------------------------


def subtree_hash(start: int, end: int, reader: NodeReader) -> Hash:
    """``MTH(D[start:end])`` from the complete aligned nodes inside the range.

    ``start`` must be a multiple of the largest power of two not above
    ``end - start`` (true of every range in RFC 6962 roots and proofs).
    """
    return _ranges_hashes([(start, end)], reader)[0]


def root_hash(size: int, reader: NodeReader) -> Hash:
    """``MTH(D[0:size])``; :data:`EMPTY_ROOT` for ``size == 0``."""
    if size < 0:
        raise UsageError(_("tree size must not be negative: %d") % size)
    if size == 0:
        return EMPTY_ROOT
    return subtree_hash(0, size, reader)


def leaf_hashes_root(leaf_hashes: Sequence[Hash]) -> Hash:
    """``MTH`` of a full list of leaf hashes, recomputed from scratch.

    Level by level, carrying an odd last node up unchanged, which gives the
    same tree as RFC 6962's largest-power-of-two split. O(n) time and memory.
    """
    if any(len(h) != HASH_SIZE for h in leaf_hashes):
        raise UsageError(_("every leaf hash must be %d bytes") % HASH_SIZE)
    if not leaf_hashes:
        return EMPTY_ROOT
    level = list(leaf_hashes)
    while len(level) > 1:
        paired = [
            hashlib.sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return bytes(level[0])


# --- proofs ----------------------------------------------------------------------


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Ranges whose ``MTH`` form ``PATH(index, D[0:size])``, leaf end first."""
    lo, hi = 0, size
    top_down: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _largest_power_of_two_below(hi - lo)
        if index < lo + k:
            top_down.append((lo + k, hi))
            hi = lo + k
        else:
            top_down.append((lo, lo + k))
            lo += k
    return top_down[::-1]


def inclusion_proof(index: int, size: int, reader: NodeReader) -> list[Hash]:
    """RFC 6962 audit path ``PATH(index, D[0:size])``, from the leaf up."""
    if not 0 <= index < size:
        raise UsageError(
            _("leaf index %d is outside a tree of size %d") % (index, size),
            hint=_("an inclusion proof needs 0 <= index < size"),
        )
    return _ranges_hashes(_inclusion_ranges(index, size), reader)


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Ranges whose ``MTH`` form ``PROOF(old_size, D[0:new_size])``, in order."""
    lo, hi, m = 0, new_size, old_size
    known = True  # the "b" flag of RFC 6962's SUBPROOF
    top_down: list[tuple[int, int]] = []
    while m != hi - lo:
        k = _largest_power_of_two_below(hi - lo)
        if m <= k:
            top_down.append((lo + k, hi))
            hi = lo + k
        else:
            top_down.append((lo, lo + k))
            lo, m, known = lo + k, m - k, False
    if not known:
        top_down.append((lo, hi))
    return top_down[::-1]


def consistency_proof(old_size: int, new_size: int, reader: NodeReader) -> list[Hash]:
    """RFC 6962 ``PROOF(old_size, D[0:new_size])``; ``[]`` when the sizes match."""
    if not 0 < old_size <= new_size:
        raise UsageError(
            _("no consistency proof from size %d to size %d") % (old_size, new_size),
            hint=_("a consistency proof needs 0 < old size <= new size"),
        )
    if old_size == new_size:
        return []
    return _ranges_hashes(_consistency_ranges(old_size, new_size), reader)


# --- verification (RFC 9162 2.1.3.2 and 2.1.4.2) ---------------------------------


def _all_hashes(values: Sequence[bytes]) -> bool:
    return all(isinstance(v, bytes) and len(v) == HASH_SIZE for v in values)


def verify_inclusion(
    leaf_hash: Hash, index: int, size: int, proof: Sequence[Hash], root: Hash
) -> bool:
    """Whether ``proof`` shows leaf ``leaf_hash`` at ``index`` in the tree ``root``."""
    if not 0 <= index < size or not _all_hashes([leaf_hash, root, *proof]):
        return False
    fn, sn, acc = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            acc = hash_children(p, acc)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            acc = hash_children(acc, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and acc == root


def verify_consistency(
    old_size: int, new_size: int, old_root: Hash, new_root: Hash, proof: Sequence[Hash]
) -> bool:
    """Whether ``proof`` shows tree ``new_root`` extends tree ``old_root``.

    Equal sizes need an empty proof and equal roots; from size 0 only an empty
    proof and ``old_root == EMPTY_ROOT`` are accepted.
    """
    if not 0 <= old_size <= new_size or not _all_hashes([old_root, new_root, *proof]):
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof and old_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is a node
        path.insert(0, old_root)
    return _run_consistency(old_size, new_size, path) == (old_root, new_root)


def _run_consistency(
    old_size: int, new_size: int, path: Sequence[Hash]
) -> tuple[Hash, Hash] | None:
    """Old and new roots implied by ``path``; ``None`` if it has the wrong shape."""
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            fr, sr = hash_children(c, fr), hash_children(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        return None
    return fr, sr


# --- in-memory store -------------------------------------------------------------


class MemoryNodes:
    """A :class:`NodeReader` held in a dict, grown by :meth:`append`.

    For tests, and for recomputing a whole log to compare with the stored one.
    """

    def __init__(self) -> None:
        self.nodes: dict[NodeKey, Hash] = {}
        self.size = 0

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, Hash]:
        return {key: self.nodes[key] for key in keys if key in self.nodes}

    def append(self, leaf_data: bytes) -> int:
        """Append one leaf's data; returns its index."""
        return self.append_leaf_hash(hash_leaf(leaf_data))

    def append_leaf_hash(self, leaf_hash: Hash) -> int:
        """Append one leaf by its hash; returns its index."""
        index = self.size
        for level, i, value in nodes_completed_by_append(index, leaf_hash, self):
            self.nodes[(level, i)] = value
        self.size += 1
        return index

    def root(self) -> Hash:
        return root_hash(self.size, self)
