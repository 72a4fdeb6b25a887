"""Hypothesis strategies several test modules draw from."""

from __future__ import annotations

from hypothesis import strategies as st

from catalog.domain.reference import Named

_COMPONENT = st.from_regex(r"[a-z0-9]{1,5}(?:(?:[._]|__|-{1,2})[a-z0-9]{1,5}){0,2}", fullmatch=True)
_DOMAINS = st.sampled_from(
    ["docker.io", "localhost", "localhost:5000", "example.com", "quay.io", "docker.io.example"]
)
_PATHS = st.one_of(
    st.lists(_COMPONENT, min_size=1, max_size=3).map("/".join),
    st.lists(_COMPONENT, min_size=1, max_size=2).map(lambda parts: "library/" + "/".join(parts)),
)
_TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_DIGESTS = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)
# What the catalog stores: normalized names, bare or with a tag or a digest.
STORED_REFERENCES = st.builds(
    Named,
    domain=_DOMAINS,
    path=_PATHS,
    tag=st.none() | _TAGS,
    digest=st.none() | _DIGESTS,
).filter(lambda ref: ref.tag is None or ref.digest is None)
