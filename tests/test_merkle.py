"""RFC 6962 Merkle trees: known vectors, a naive reference, rejection of bad proofs."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultd.errors import LogTamperedError, UsageError
from vaultd.merkle import (
    EMPTY_ROOT,
    Hash,
    MemoryNodes,
    NodeKey,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    leaf_hashes_root,
    nodes_completed_by_append,
    root_hash,
    subtree_hash,
    verify_consistency,
    verify_inclusion,
)

# Certificate Transparency's Merkle tree test data (the 8 leaves used by CT's
# merkle_tree_test and by github.com/transparency-dev/merkle/testonly).
CT_LEAVES = [
    bytes.fromhex(x)
    for x in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
CT_ROOTS = [  # by tree size 0..8
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
CT_NODES = {  # every complete subtree of the 8-leaf tree: (level, index) -> hash
    (0, 0): "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    (0, 1): "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    (0, 2): "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    (0, 3): "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    (0, 4): "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    (0, 5): "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    (0, 6): "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    (0, 7): "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    (1, 0): "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    (1, 1): "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    (1, 2): "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    (1, 3): "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    (2, 0): "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    (2, 1): "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    (3, 0): "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}
CT_INCLUSION = [  # (index, size, audit path)
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (0, 1, []),
]  # fmt: skip
CT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
]  # fmt: skip


def _hexes(values: Sequence[bytes]) -> list[str]:
    return [v.hex() for v in values]


def _tree(n: int, seed: int = 0) -> tuple[MemoryNodes, list[Hash]]:
    rng = random.Random(seed)
    tree = MemoryNodes()
    leaves = [rng.randbytes(rng.randrange(0, 40)) for _ in range(n)]
    for data in leaves:
        tree.append(data)
    return tree, [hash_leaf(d) for d in leaves]


@pytest.fixture(scope="module")
def ct_tree() -> MemoryNodes:
    tree = MemoryNodes()
    for data in CT_LEAVES:
        tree.append(data)
    return tree


# --- naive reference, straight from the RFC 6962 section 2.1 definitions --------------


def ref_mth(d: Sequence[Hash]) -> Hash:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return d[0]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    return hash_children(ref_mth(d[:k]), ref_mth(d[k:]))


def ref_path(m: int, d: Sequence[Hash]) -> list[Hash]:
    if len(d) == 1:
        return []
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m: int, d: Sequence[Hash], b: bool) -> list[Hash]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = 1 << ((len(d) - 1).bit_length() - 1)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_path_shape(m: int, n: int) -> list[str]:
    """Side of each audit path element: "R" right sibling, "L" left sibling."""
    if n == 1:
        return []
    k = 1 << ((n - 1).bit_length() - 1)
    return ref_path_shape(m, k) + ["R"] if m < k else ref_path_shape(m - k, n - k) + ["L"]


def ref_proof_shape(m: int, n: int, b: bool = True) -> list[str]:
    """Role of each consistency proof element: "T" the old tree's edge node,
    "L" left sibling (in both trees), "R" right sibling (new tree only)."""
    if m == n:
        return [] if b else ["T"]
    k = 1 << ((n - 1).bit_length() - 1)
    if m <= k:
        return ref_proof_shape(m, k, b) + ["R"]
    return ref_proof_shape(m - k, n - k, False) + ["L"]


# Two (index, size) pairs whose proofs have the same shape accept the same
# proofs (a size-3 path [b, c] is also a size-4 path when c stands for a node),
# so a changed index or size must be rejected only where the shape changes.


# --- hashing and known vectors ---------------------------------------------------------


def test_hashing_prefixes_and_empty_root() -> None:
    assert EMPTY_ROOT.hex() == CT_ROOTS[0]
    assert hash_leaf(b"x") == hashlib.sha256(b"\x00x").digest()
    assert (
        hash_children(b"a" * 32, b"b" * 32)
        == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )


def test_ct_roots_for_every_size(ct_tree: MemoryNodes) -> None:
    assert [root_hash(n, ct_tree).hex() for n in range(9)] == CT_ROOTS


def test_append_stores_exactly_the_complete_subtrees(ct_tree: MemoryNodes) -> None:
    assert {k: v.hex() for k, v in ct_tree.nodes.items()} == CT_NODES


def test_append_returns_completed_nodes() -> None:
    tree = MemoryNodes()
    for data in CT_LEAVES[:7]:
        tree.append(data)
    got = nodes_completed_by_append(7, hash_leaf(CT_LEAVES[7]), tree)
    assert [(k, i, h.hex()) for k, i, h in got] == [
        (0, 7, CT_NODES[(0, 7)]),
        (1, 3, CT_NODES[(1, 3)]),
        (2, 1, CT_NODES[(2, 1)]),
        (3, 0, CT_NODES[(3, 0)]),
    ]
    assert [(k, i) for k, i, _h in nodes_completed_by_append(4, hash_leaf(b""), tree)] == [(0, 4)]


@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION)
def test_ct_inclusion_vectors(ct_tree: MemoryNodes, index: int, size: int, path: list[str]) -> None:
    proof = inclusion_proof(index, size, ct_tree)
    assert _hexes(proof) == path
    leaf = hash_leaf(CT_LEAVES[index])
    assert verify_inclusion(leaf, index, size, proof, bytes.fromhex(CT_ROOTS[size]))


@pytest.mark.parametrize(("old", "new", "path"), CT_CONSISTENCY)
def test_ct_consistency_vectors(ct_tree: MemoryNodes, old: int, new: int, path: list[str]) -> None:
    proof = consistency_proof(old, new, ct_tree)
    assert _hexes(proof) == path
    old_root, new_root = bytes.fromhex(CT_ROOTS[old]), bytes.fromhex(CT_ROOTS[new])
    assert verify_consistency(old, new, old_root, new_root, proof)


# --- against the naive reference -------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 300), data=st.data())
def test_matches_naive_reference(size: int, data: st.DataObject) -> None:
    tree, leaves = _tree(size, seed=size)
    root = ref_mth(leaves)
    assert root_hash(size, tree) == root == leaf_hashes_root(leaves)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof = inclusion_proof(index, size, tree)
    assert proof == ref_path(index, leaves)
    assert verify_inclusion(leaves[index], index, size, proof, root)
    old = data.draw(st.integers(1, size), label="old")
    cproof = consistency_proof(old, size, tree)
    assert cproof == ([] if old == size else ref_subproof(old, leaves, True))
    assert verify_consistency(old, size, ref_mth(leaves[:old]), root, cproof)
    level = data.draw(st.integers(0, (size - 1).bit_length()), label="level")
    start = data.draw(st.integers(0, (size - 1) >> level), label="node") << level
    end = min(size, start + (1 << level))  # a node, or the ragged right edge of one
    assert subtree_hash(start, end, tree) == ref_mth(leaves[start:end])


def test_every_proof_of_small_trees_matches_reference() -> None:
    for size in range(1, 34):
        tree, leaves = _tree(size, seed=size)
        for index in range(size):
            assert inclusion_proof(index, size, tree) == ref_path(index, leaves)
            assert root_hash(index + 1, tree) == ref_mth(leaves[: index + 1])
        for old in range(1, size):
            assert consistency_proof(old, size, tree) == ref_subproof(old, leaves, True)


def test_leaf_hashes_root() -> None:
    assert leaf_hashes_root([]) == EMPTY_ROOT
    leaves = [hash_leaf(d) for d in CT_LEAVES]
    assert [leaf_hashes_root(leaves[:n]).hex() for n in range(9)] == CT_ROOTS
    with pytest.raises(UsageError):
        leaf_hashes_root([b"short"])


# --- verification rejects what it must -------------------------------------------------


def _inclusion_mutations(
    leaf: Hash, index: int, size: int, proof: list[Hash], root: Hash
) -> list[tuple[str, tuple[Hash, int, int, list[Hash], Hash]]]:
    other = hashlib.sha256(b"other").digest()
    out = [
        ("index - 1", (leaf, index - 1, size, proof, root)),
        ("index + 1", (leaf, index + 1, size, proof, root)),
        ("index ^ 2", (leaf, index ^ 2, size, proof, root)),
        ("size + 1", (leaf, index, size + 1, proof, root)),
        ("size - 1", (leaf, index, size - 1, proof, root)),
        ("size * 2", (leaf, index, size * 2, proof, root)),
        ("size // 2", (leaf, index, size // 2, proof, root)),
        ("wrong leaf", (other, index, size, proof, root)),
        ("wrong root", (leaf, index, size, proof, other)),
        ("empty root", (leaf, index, size, proof, EMPTY_ROOT)),
        ("extended", (leaf, index, size, [*proof, other], root)),
        ("extended by root", (leaf, index, size, [*proof, root], root)),
        ("prepended", (leaf, index, size, [root, *proof], root)),
        (
            "short hash",
            (leaf, index, size, [*proof[:-1], proof[-1][:31]] if proof else [b""], root),
        ),
    ]
    if proof:
        out.append(("truncated", (leaf, index, size, proof[:-1], root)))
        out.append(("swapped", (leaf, index, size, proof[::-1], root)))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        out.append((f"flipped bit in proof[{i}]", (leaf, index, size, bad, root)))
    return out


def test_verify_inclusion_rejects_mutations() -> None:
    for size in (1, 2, 3, 5, 8, 13, 37):
        tree, leaves = _tree(size, seed=size)
        root = root_hash(size, tree)
        for index in range(size):
            proof = inclusion_proof(index, size, tree)
            assert verify_inclusion(leaves[index], index, size, proof, root)
            for name, args in _inclusion_mutations(leaves[index], index, size, proof, root):
                if name == "swapped" and len(set(proof)) < 2:
                    continue
                _leaf, i, n, _proof, _root = args
                same_shape = 0 <= i < n and ref_path_shape(i, n) == ref_path_shape(index, size)
                expected = same_shape and name.startswith(("index", "size"))
                assert verify_inclusion(*args) is expected, (size, index, name)


def _consistency_mutations(
    old: int, new: int, old_root: Hash, new_root: Hash, proof: list[Hash]
) -> list[tuple[str, tuple[int, int, Hash, Hash, list[Hash]]]]:
    other = hashlib.sha256(b"other").digest()
    out = [
        ("old - 1", (old - 1, new, old_root, new_root, proof)),
        ("old + 1", (old + 1, new, old_root, new_root, proof)),
        ("old ^ 2", (old ^ 2, new, old_root, new_root, proof)),
        ("new + 1", (old, new + 1, old_root, new_root, proof)),
        ("new - 1", (old, new - 1, old_root, new_root, proof)),
        ("new * 2", (old, new * 2, old_root, new_root, proof)),
        ("wrong old root", (old, new, other, new_root, proof)),
        ("wrong new root", (old, new, old_root, other, proof)),
        ("swapped roots", (old, new, new_root, old_root, proof)),
        ("empty proof", (old, new, old_root, new_root, [])),
        ("truncated", (old, new, old_root, new_root, proof[:-1])),
        ("extended", (old, new, old_root, new_root, [*proof, other])),
        ("extended by old root", (old, new, old_root, new_root, [*proof, old_root])),
        ("prepended old root", (old, new, old_root, new_root, [old_root, *proof])),
        ("prepended proof[0]", (old, new, old_root, new_root, [proof[0], *proof])),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        out.append((f"flipped bit in proof[{i}]", (old, new, old_root, new_root, bad)))
    return out


def test_verify_consistency_rejects_mutations() -> None:
    size = 40
    tree, _leaves = _tree(size)
    for new in range(2, size + 1):
        for old in range(1, new):
            proof = consistency_proof(old, new, tree)
            old_root, new_root = root_hash(old, tree), root_hash(new, tree)
            assert verify_consistency(old, new, old_root, new_root, proof)
            shape = ref_proof_shape(old, new)
            for name, args in _consistency_mutations(old, new, old_root, new_root, proof):
                m, n, _r1, _r2, _proof = args
                same_shape = 0 < m < n and ref_proof_shape(m, n) == shape
                expected = same_shape and name.startswith(("old", "new"))
                assert verify_consistency(*args) is expected, (old, new, name)


def test_verify_consistency_edge_sizes() -> None:
    root = hashlib.sha256(b"r").digest()
    assert verify_consistency(5, 5, root, root, [])
    assert not verify_consistency(5, 5, root, EMPTY_ROOT, [])
    assert not verify_consistency(5, 5, root, root, [root])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert verify_consistency(0, 7, EMPTY_ROOT, root, [])
    assert not verify_consistency(0, 7, root, root, [])
    assert not verify_consistency(0, 7, EMPTY_ROOT, root, [root])
    assert not verify_consistency(3, 2, root, root, [root])
    assert not verify_consistency(-1, 2, root, root, [root])


def test_verify_inclusion_edge_sizes() -> None:
    leaf = hash_leaf(b"data")
    assert verify_inclusion(leaf, 0, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 0, [], leaf)
    assert not verify_inclusion(leaf, 1, 1, [], leaf)
    assert not verify_inclusion(leaf, -1, 1, [], leaf)
    assert not verify_inclusion(leaf, 0, 1, [], EMPTY_ROOT)
    assert not verify_inclusion(b"", 0, 1, [], b"")


# --- arguments and the reader ----------------------------------------------------------


def test_bad_arguments_are_usage_errors(ct_tree: MemoryNodes) -> None:
    with pytest.raises(UsageError, match="old size"):
        consistency_proof(0, 5, ct_tree)
    with pytest.raises(UsageError):
        consistency_proof(6, 5, ct_tree)
    assert consistency_proof(5, 5, ct_tree) == []
    with pytest.raises(UsageError, match="outside a tree of size 8"):
        inclusion_proof(8, 8, ct_tree)
    with pytest.raises(UsageError):
        inclusion_proof(-1, 8, ct_tree)
    with pytest.raises(UsageError, match="not aligned"):
        subtree_hash(1, 3, ct_tree)
    with pytest.raises(UsageError):
        root_hash(-1, ct_tree)
    with pytest.raises(UsageError):
        nodes_completed_by_append(0, b"short", ct_tree)


def test_missing_or_malformed_node_is_tampering(ct_tree: MemoryNodes) -> None:
    with pytest.raises(LogTamperedError, match="level 0, index 8"):
        root_hash(9, ct_tree)
    broken = MemoryNodes()
    broken.nodes = dict(ct_tree.nodes)
    broken.nodes[(1, 2)] = b"truncated"
    with pytest.raises(LogTamperedError, match="malformed Merkle node: level 1, index 2"):
        inclusion_proof(7, 8, broken)
    del broken.nodes[(1, 2)]
    with pytest.raises(LogTamperedError, match="missing"):
        nodes_completed_by_append(7, hash_leaf(b""), broken)


class CountingReader:
    def __init__(self, inner: MemoryNodes) -> None:
        self.inner = inner
        self.calls: list[int] = []

    def get_nodes(self, keys: Sequence[NodeKey]) -> Mapping[NodeKey, Hash]:
        self.calls.append(len(keys))
        return self.inner.get_nodes(keys)


def test_reader_is_called_once_per_operation_with_few_keys() -> None:
    tree, _leaves = _tree(1000)
    reader = CountingReader(tree)
    root_hash(1000, reader)
    inclusion_proof(517, 1000, reader)
    consistency_proof(333, 1000, reader)
    nodes_completed_by_append(1000, hash_leaf(b"x"), reader)  # 1000 = 0b1111101000: no siblings
    nodes_completed_by_append(999, hash_leaf(b"x"), reader)  # 999 has 3 trailing ones
    assert len(reader.calls) == 4
    assert all(n <= 2 * 10 + 2 for n in reader.calls), reader.calls
