"""The fast canonical-JSON path must be byte-identical to RFC 8785 (the rfc8785 library)."""

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from vaultd.audit import canonical_json

scalars = st.none() | st.booleans() | st.integers(min_value=-(2**53 - 1), max_value=2**53 - 1) | st.text(
    alphabet=st.characters(blacklist_categories=("Cs",)))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(alphabet=st.characters(max_codepoint=127), max_size=8), inner, max_size=4), max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(values)
def test_fast_path_equals_rfc8785(value: object) -> None:
    assert canonical_json(value) == bytes(rfc8785.dumps(value))


def test_floats_and_non_ascii_keys_use_the_library() -> None:
    for value in ({"a": 1.0}, {"é": 1, "e": 2}, {"x": [1e21, 0.5, -0.0]}, {"执法": "记录仪"}):
        assert canonical_json(value) == bytes(rfc8785.dumps(value))


def test_control_characters_and_chinese_text() -> None:
    value = {"reason": "案件\u0007 \"复核\"\n\t\u2028\x7f", "n": -5}
    assert canonical_json(value) == bytes(rfc8785.dumps(value))
