"""Tests for catalog.domain.reference: every case of tests/fixtures/reference-cases.json,
Go's path.Match table, and properties of the grammar."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import files

from catalog.docker import pathmatch
from catalog.domain import digest as dg
from catalog.domain import reference as R
from catalog.errors import InvalidReference

SPEC = files.REFERENCE_CASES
# distribution/reference's tests import only crypto/sha256 (see the JSON's meta.notes).
SHA256_ONLY = frozenset({"sha256"})
HEX64 = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c"

# Fields that say where a case comes from or what it feeds in, not what to expect.
METADATA = frozenset(
    {"source", "func", "asserted", "note", "input", "ref", "pattern", "regexp"}
    | {"image_tags", "reference_filter"}
)

# The Go error variables the upstream tests compare by identity, and their texts.
GO_ERRORS = {
    "ErrNameEmpty": R.ERR_NAME_EMPTY,
    "ErrReferenceInvalidFormat": R.ERR_REFERENCE_INVALID_FORMAT,
    "ErrNameContainsUppercase": R.ERR_NAME_CONTAINS_UPPERCASE,
    "ErrNameTooLong": R.ERR_NAME_TOO_LONG,
    "ErrNameNotCanonical": R.ERR_NAME_NOT_CANONICAL,
    "digest.ErrDigestInvalidFormat": dg.ERR_FORMAT,
    "digest.ErrDigestInvalidLength": dg.ERR_LENGTH,
    "digest.ErrDigestUnsupported": dg.ERR_UNSUPPORTED,
}


def _load_spec() -> dict[str, Any]:
    # Part of the repository: a missing case file fails collection, never empties the cases.
    data: dict[str, Any] = json.loads(SPEC.read_text(encoding="utf-8"))
    return data


_SPEC_DATA = _load_spec()


def _short(value: object) -> str:
    if isinstance(value, dict):
        value = "+".join(str(v) for v in value.values() if v is not None)
    text = str(value)
    return text if len(text) <= 48 else f"{text[:40]}...({len(text)})"


def _params(section: str, describe: Callable[[dict[str, Any]], str]) -> list[Any]:
    return [
        pytest.param(case, id=f"{i:03d}-{describe(case)}")
        for i, case in enumerate(_SPEC_DATA[section])
    ]


class Fields:
    """Checks a case's expected fields and, at the end, that none was left unchecked."""

    def __init__(self, case: dict[str, Any]) -> None:
        self.case = case
        self.seen = set(METADATA)

    def __contains__(self, key: str) -> bool:
        return key in self.case

    def take(self, key: str) -> Any:
        self.seen.add(key)
        return self.case[key]

    def check(self, key: str, actual: Callable[[], object]) -> None:
        if key in self.case:
            assert actual() == self.take(key), key

    def done(self) -> None:
        assert set(self.case) <= self.seen, f"unchecked fields {set(self.case) - self.seen}"


# --- section "cases": distribution/reference's reference_test.go and normalize_test.go ---


def _build(func: str, given_input: Any) -> R.Named | R.DigestReference:
    simple: dict[str, Callable[[str], R.Named | R.DigestReference]] = {
        "Parse": lambda s: R.parse(s, algorithms=SHA256_ONLY),
        "WithName": R.with_name,
        "ParseNamed": lambda s: R.parse_named(s, algorithms=SHA256_ONLY),
        "ParseNormalizedNamed": lambda s: R.parse_normalized_named(s, algorithms=SHA256_ONLY),
        "ParseAnyReference": lambda s: R.parse_any_reference(s, algorithms=SHA256_ONLY),
        "ParseDockerRef": lambda s: R.parse_docker_ref(s, algorithms=SHA256_ONLY),
    }
    if func in simple:
        return simple[func](given_input)
    name, tag, digest = given_input["name"], given_input.get("tag"), given_input.get("digest")
    # TestWithTag adds the digest first and the tag last; TestWithDigest the other way round.
    if func == "WithName+WithTag":
        named = R.with_name(name)
        if digest is not None:
            named = R.with_digest(named, digest)
        return R.with_tag(named, tag)
    if func == "WithName+WithDigest":
        named = R.with_name(name)
        if tag is not None:
            named = R.with_tag(named, tag)
        return R.with_digest(named, digest)
    if func == 'ParseNormalizedNamed("busybox")+WithTag':
        return R.with_tag(R.parse_normalized_named(name), tag)
    if func == 'ParseNormalizedNamed("busybox")+WithDigest':
        return R.with_digest(R.parse_normalized_named(name), digest)
    pytest.fail(f"no handler for func {func!r}")


def _check_result(fields: Fields, result: R.Named | R.DigestReference) -> None:
    fields.check("string", lambda: str(result))
    fields.check("kind", lambda: result.kind)
    fields.check("familiar", lambda: R.familiar_string(result))
    fields.check(
        "familiar_name",
        lambda: R.familiar_name(result) if isinstance(result, R.Named) else None,
    )
    fields.check("name", lambda: result.name)
    fields.check("domain", lambda: result.domain)
    fields.check("path", lambda: result.path)
    fields.check("tag", lambda: result.tag)
    fields.check("digest", lambda: result.digest)


@pytest.mark.parametrize("case", _params("cases", lambda c: f"{c['func']}-{_short(c['input'])}"))
def test_reference_case(case: dict[str, Any]) -> None:
    fields = Fields(case)
    func, given_input = case["func"], case["input"]
    if fields.take("valid"):
        _check_result(fields, _build(func, given_input))
        fields.check("error", lambda: None)
    else:
        with pytest.raises(InvalidReference) as info:
            _build(func, given_input)
        fields.check("error", lambda: info.value.message)
        if "error_symbol" in fields:
            assert info.value.message == GO_ERRORS[fields.take("error_symbol")]
    # Derived fields: what the normalizing entry points make of the same input.
    fields.check(
        "normalized", lambda: str(R.parse_normalized_named(given_input, algorithms=SHA256_ONLY))
    )
    fields.check(
        "normalized_familiar",
        lambda: R.familiar_string(R.parse_normalized_named(given_input, algorithms=SHA256_ONLY)),
    )
    fields.check("docker_ref", lambda: str(R.parse_docker_ref(given_input, algorithms=SHA256_ONLY)))
    fields.check(
        "docker_ref_familiar",
        lambda: R.familiar_string(R.parse_docker_ref(given_input, algorithms=SHA256_ONLY)),
    )
    fields.done()


# --- section "familiar_match": normalize_test.go TestMatch / TestMatchError ---


@pytest.mark.parametrize(
    "case", _params("familiar_match", lambda c: f"{_short(c['pattern'])}-{_short(c['ref'])}")
)
def test_familiar_match_case(case: dict[str, Any]) -> None:
    fields = Fields(case)
    ref = R.parse_any_reference(case["ref"], algorithms=SHA256_ONLY)
    fields.check("familiar_string", lambda: R.familiar_string(ref))
    fields.check(
        "familiar_name", lambda: R.familiar_name(ref) if isinstance(ref, R.Named) else None
    )
    if "error" in fields:
        with pytest.raises(pathmatch.BadPattern) as info:
            R.familiar_match(case["pattern"], ref)
        assert fields.take("error").startswith(str(info.value) + " ")
        # Go returns false alongside the error.
        assert fields.take("match") is False
    else:
        fields.check("match", lambda: R.familiar_match(case["pattern"], ref))
    fields.done()


# --- section "regexp_cases": regexp_test.go ---

REGEXPS = {
    "^domainAndPort$": R.AnchoredDomainRegexp,
    "anchoredNameRegexp": R.AnchoredNameRegexp,
    "referenceRegexp": R.ReferenceRegexp,
    "^[a-f0-9]{64}$": R.AnchoredIdentifierRegexp,
}


def test_regexp_group_counts() -> None:
    """regexp_test.go insists on these numbers of submatches."""
    assert R.AnchoredNameRegexp.groups == 2
    assert R.ReferenceRegexp.groups == 3


def _found(regexp: re.Pattern[str], text: str, group: int = 0) -> str | None:
    found = regexp.search(text)
    return None if found is None else found.group(group)


def test_exported_regexps_are_unanchored_like_go() -> None:
    text = "see example.com:5000/a/b:v1@sha256:" + HEX64 + " here"
    assert _found(R.DigestRegexp, text) == "sha256:" + HEX64
    assert _found(R.DomainRegexp, "[::1]:80/x") == "[::1]:80"
    assert _found(R.IdentifierRegexp, "id=" + HEX64, 1) == HEX64
    # Leftmost match: `Ab` is a host (upper case is allowed there), `-` is skipped.
    assert _found(R.NameRegexp, "-Ab/c") == "Ab/c"
    assert _found(R.TagRegexp, "::v1.0-rc") == "v1.0-rc"
    assert _found(R.ReferenceRegexp, text) is None


@pytest.mark.parametrize(
    "case", _params("regexp_cases", lambda c: f"{c['regexp'].split()[0]}-{_short(c['input'])}")
)
def test_regexp_case(case: dict[str, Any]) -> None:
    fields = Fields(case)
    regexp = REGEXPS[case["regexp"].split(" (")[0]]
    # Go's FindStringSubmatch: leftmost match, unmatched groups as "".
    found = regexp.search(case["input"])
    fields.check("match", lambda: found is not None)
    if found is not None:
        assert found.group(0) == case["input"]
        fields.check("groups", lambda: [g or "" for g in found.groups()])
    fields.done()


# --- section "moby_cases": moby's client, daemon and integration tests ---


def _go_quote(text: str) -> str:
    """Go's %q for printable ASCII, which is all these inputs are."""
    assert text.isascii() and text.isprintable()
    return json.dumps(text)


@pytest.mark.parametrize(
    "case", _params("moby_cases", lambda c: f"{c['func'].split()[0]}-{_short(c['input'])}")
)
def test_moby_case(case: dict[str, Any]) -> None:
    fields = Fields(case)
    func, text = case["func"], case["input"]
    valid = fields.take("valid") if "valid" in fields else True
    if func == "client.ImageTag target (ParseNormalizedNamed)":
        assert not valid
        with pytest.raises(InvalidReference) as info:
            R.parse_normalized_named(text)
        # moby's client wraps the parser's error (client/image_tag.go).
        fields.check(
            "error",
            lambda: (
                f"error parsing reference: {_go_quote(text)} is not a valid "
                f"repository/tag: {info.value.message}"
            ),
        )
    elif func in (
        "client.ImageTag target -> POST /images/{name}/tag?repo=&tag=",
        "ImageTag target",
    ):
        named = R.parse_normalized_named(text)
        if valid:
            assert named.digest is None
            tagged = R.tag_name_only(named)
            fields.check("repo_query", lambda: tagged.name)
            fields.check("tag_query", lambda: tagged.tag)
        else:
            # It parses; the daemon then refuses it because the familiar name is `sha256`.
            fields.check("parses_as", lambda: str(named))
            assert R.familiar_name(named) == dg.SHA256
            assert "ambiguous tag using digest algorithm as name" in fields.take("error")
    elif func == "ParseAnyReference (tag source)":
        any_ref = R.parse_any_reference(text)
        fields.check("string", lambda: str(any_ref))
        fields.check("kind", lambda: any_ref.kind)
    elif func in ("ParseNormalizedNamed", "ParseNormalizedNamed + refStore.AddTag"):
        named = R.parse_normalized_named(text)
        fields.check("normalized", lambda: str(named))
        fields.check("familiar", lambda: R.familiar_string(named))
        if "add_tag_error" in fields:
            # The refstore's two refusals, checked through the condition that triggers each.
            error = fields.take("add_tag_error")
            if "with a digest reference" in error:
                assert named.digest is not None
            else:
                assert "ambiguous tag using digest algorithm as name" in error
                assert named.digest is None
                assert R.familiar_name(named) == dg.SHA256
    elif func == "refstore key":
        named = R.parse_normalized_named(text)
        # repositories.json: {"Repositories": {FamiliarName: {FamiliarString: imageID}}}
        fields.check("repositories_json_repo_key", lambda: R.familiar_name(named))
        fields.check("repositories_json_ref_key", lambda: R.familiar_string(named))
    else:
        pytest.fail(f"no handler for func {func!r}")
    fields.done()


# --- section "image_list_reference_filter": the `reference` filter of GET /images/json ---


@pytest.mark.parametrize(
    "case",
    _params(
        "image_list_reference_filter",
        lambda c: f"{c['source'].split()[-1]}-{'+'.join(c['reference_filter'])}",
    ),
)
def test_image_list_reference_filter_case(case: dict[str, Any]) -> None:
    fields = Fields(case)
    patterns: list[str] = case["reference_filter"]
    stored = {tag: R.parse_normalized_named(tag) for tag in case["image_tags"]}
    # RepoTags shows each stored reference in its familiar form.
    assert [R.familiar_string(r) for r in stored.values()] == list(stored)

    def matching(match: Callable[[str, R.Named], bool]) -> list[str]:
        return [tag for tag, ref in stored.items() if any(match(p, ref) for p in patterns)]

    current = matching(R.reference_filter_match)
    fields.check("matching_tags_current", lambda: current)
    fields.check("matching_tags_before_v29.5_FamiliarMatch", lambda: matching(R.familiar_match))
    fields.check("expected_listed", lambda: current)
    fields.check("expected_repo_tags_count", lambda: len(current))
    if "expected_not_listed" in fields:
        assert not set(fields.take("expected_not_listed")) & set(current)
    # Every tag of these scenarios sits on one image, so it is listed iff a tag matched.
    fields.check("expected_images", lambda: 1 if current else 0)
    fields.done()


# --- Go's path.Match: src/path/match_test.go, verbatim ---

BAD = "ErrBadPattern"
GO_MATCH_TESTS: list[tuple[str, str, bool | str]] = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),  # noqa: RUF001 (Go's test uses Greek letters)
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("[]a]", "]", BAD),
    ("[-]", "-", BAD),
    ("[x-]", "x", BAD),
    ("[x-]", "-", BAD),
    ("[x-]", "z", BAD),
    ("[-x]", "x", BAD),
    ("[-x]", "-", BAD),
    ("[-x]", "a", BAD),
    ("\\", "a", BAD),
    ("[a-b-c]", "a", BAD),
    ("[", "a", BAD),
    ("[^", "a", BAD),
    ("[^bc", "a", BAD),
    ("a[", "a", BAD),
    ("a[", "ab", BAD),
    ("a[", "x", BAD),
    ("a/b[", "x", BAD),
    ("*x", "xxx", True),
]


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_MATCH_TESTS)
def test_path_match_go_table(pattern: str, name: str, expected: bool | str) -> None:
    if expected == BAD:
        with pytest.raises(pathmatch.BadPattern, match=r"^syntax error in pattern$"):
            pathmatch.path_match(pattern, name)
    else:
        assert pathmatch.path_match(pattern, name) is expected


def test_path_match_works_on_utf8_bytes_like_go() -> None:
    """After `*` skips one byte into `€` (3 bytes), each `?` eats one invalid byte."""
    assert pathmatch.path_match("*??", "€") is True
    assert pathmatch.path_match("??", "€") is False
    assert pathmatch.path_match("?", "€") is True


def test_path_match_rejects_invalid_utf8_in_a_class() -> None:
    # A lone surrogate has no UTF-8 form; Go sees the bytes as an invalid rune.
    with pytest.raises(pathmatch.BadPattern):
        pathmatch.path_match("[\ud800]", "a")


def test_bad_pattern_is_a_value_error() -> None:
    assert issubclass(pathmatch.BadPattern, ValueError)


# --- Spot checks of behaviour the JSON derives but does not list ---


def test_normalized_path_length_limit_counts_library_prefix() -> None:
    assert R.parse_normalized_named("a" * 247).path == "library/" + "a" * 247
    with pytest.raises(InvalidReference, match=f"^{R.ERR_NAME_TOO_LONG}$"):
        R.parse_normalized_named("a" * 248)


def test_length_limit_excludes_the_domain() -> None:
    assert R.parse("example.com/" + "a" * 255).path == "a" * 255
    with pytest.raises(InvalidReference, match=f"^{R.ERR_NAME_TOO_LONG}$"):
        R.parse("example.com/" + "a" * 256)
    with pytest.raises(InvalidReference, match=f"^{R.ERR_NAME_TOO_LONG}$"):
        R.with_name("a" * 256)


def test_daemon_algorithms_accept_sha512_by_default() -> None:
    text = "validname@sha512:" + "f" * 128
    assert R.parse(text).digest == "sha512:" + "f" * 128
    with pytest.raises(InvalidReference, match=f"^{dg.ERR_UNSUPPORTED}$"):
        R.parse(text, algorithms=SHA256_ONLY)


def test_parse_any_reference_falls_back_to_a_name_when_the_digest_is_refused() -> None:
    hex128 = "f" * 128
    assert R.parse_any_reference("sha512:" + hex128) == R.DigestReference("sha512:" + hex128)
    # Without sha512, `sha512` is a repository and the 128 hex digits are its tag.
    fallback = R.parse_any_reference("sha512:" + hex128, algorithms=SHA256_ONLY)
    assert str(fallback) == "docker.io/library/sha512:" + hex128
    # go-digest rejects a 63-digit sha256, so this too is a name with a tag.
    assert R.parse_any_reference("sha256:" + HEX64[:63]).tag == HEX64[:63]


def test_digest_errors_keep_go_digest_text() -> None:
    with pytest.raises(InvalidReference, match=f"^{dg.ERR_LENGTH}$"):
        R.parse("repo@sha256:" + "f" * 34)
    with pytest.raises(InvalidReference, match=f"^{dg.ERR_FORMAT}$"):
        R.parse("repo@sha256:" + "F" * 64)


def test_lowercase_check_uses_go_case_mapping() -> None:
    # Go lower-cases U+0130 to ASCII `i`, so the lower-cased input matches the grammar.
    with pytest.raises(InvalidReference, match=f"^{R.ERR_NAME_CONTAINS_UPPERCASE}$"):
        R.parse("\u0130")
    with pytest.raises(InvalidReference, match=f"^{R.ERR_REFERENCE_INVALID_FORMAT}$"):
        R.parse("\u00e9")


@pytest.mark.parametrize("text", ["foo\n", "foo:tag\n", "foo:t\u0661g", "f\u0661o"])
def test_grammar_is_ascii_and_anchored_at_the_very_end(text: str) -> None:
    with pytest.raises(InvalidReference, match=f"^{R.ERR_REFERENCE_INVALID_FORMAT}$"):
        R.parse(text)


def test_with_tag_takes_ascii_word_characters_only() -> None:
    with pytest.raises(InvalidReference, match=f"^{R.ERR_TAG_INVALID_FORMAT}$"):
        R.with_tag(R.with_name("foo"), "t\u0661")


def test_tag_length_limit() -> None:
    assert R.parse("foo:" + "t" * 128).tag == "t" * 128
    with pytest.raises(InvalidReference, match=f"^{R.ERR_REFERENCE_INVALID_FORMAT}$"):
        R.parse("foo:" + "t" * 129)
    with pytest.raises(InvalidReference, match=f"^{R.ERR_TAG_INVALID_FORMAT}$"):
        R.with_tag(R.with_name("foo"), "t" * 129)


def test_parse_named_requires_the_canonical_string() -> None:
    text = "docker.io/library/foo:1@sha256:" + HEX64
    assert str(R.parse_named(text)) == text
    with pytest.raises(InvalidReference, match=f"^{R.ERR_NAME_NOT_CANONICAL}$"):
        R.parse_named("foo:1")


def test_parse_docker_ref_prefers_the_digest() -> None:
    ref = R.parse_docker_ref("busybox:1@sha256:" + HEX64)
    assert (ref.tag, ref.digest, ref.kind) == (None, "sha256:" + HEX64, "digested")


def test_builders_keep_the_other_part() -> None:
    named = R.with_digest(R.with_name("foo"), "sha256:" + HEX64)
    both = R.with_tag(named, "v1")
    assert str(both) == "foo:v1@sha256:" + HEX64
    assert R.with_digest(both, "sha256:" + "0" * 32).tag == "v1"
    assert R.trim_named(both) == R.Named("", "foo")
    assert R.tag_name_only(named) is named
    with pytest.raises(InvalidReference, match=f"^{R.ERR_DIGEST_INVALID_FORMAT}$"):
        R.with_digest(named, "sha256:" + "0" * 31)


def test_digest_reference_shape() -> None:
    ref = R.parse_any_reference(HEX64)
    assert ref == R.DigestReference("sha256:" + HEX64)
    assert (ref.domain, ref.path, ref.name, ref.tag) == (None, None, None, None)
    assert R.familiar_string(ref) == str(ref) == "sha256:" + HEX64
    assert R.familiar_match("sha256:*", ref) is True
    assert R.familiar_match("*", ref) is True
    assert R.familiar_match("sha256", ref) is False


def test_references_are_immutable_values() -> None:
    ref = R.parse_normalized_named("foo:1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ref.tag = "2"  # type: ignore[misc]
    assert ref == R.parse_normalized_named("docker.io/library/foo:1")
    assert len({ref, R.parse_normalized_named("index.docker.io/foo:1")}) == 1


def test_normalization_can_leave_the_domain_empty() -> None:
    """splitDockerDomain calls `foo_bar.com` a host, the grammar does not: Parse then reads
    the whole name as a path, and the normalized reference has no domain."""
    ref = R.parse_normalized_named("foo_bar.com/x:1")
    assert (ref.domain, ref.path, str(ref)) == ("", "foo_bar.com/x", "foo_bar.com/x:1")
    assert R.parse_named("foo_bar.com/x:1") == ref


def test_normalization_refuses_a_bracketed_host_without_colon() -> None:
    assert R.parse("[0]/x").domain == "[0]"
    with pytest.raises(InvalidReference, match=f"^{R.ERR_REFERENCE_INVALID_FORMAT}$"):
        R.parse_normalized_named("[0]/x")


def test_familiar_form_of_a_hex_official_name_cannot_be_parsed_back() -> None:
    """A Docker quirk: `docker.io/<64 hex>` parses, its familiar form is refused."""
    ref = R.parse_normalized_named("docker.io/" + HEX64)
    assert R.familiar_string(ref) == HEX64
    with pytest.raises(InvalidReference, match="cannot specify 64-byte hexadecimal strings"):
        R.parse_normalized_named(HEX64)


@pytest.mark.parametrize(
    ("pattern", "familiar", "current"),
    [
        ("alpine", True, True),
        ("alpine:*", True, True),
        ("docker.io/library/alpine", False, True),
        ("docker.io/library/alpine:*", False, True),
        ("docker.io/library/alpine:3", False, True),
        ("library/alpine", False, False),
        ("alp*", True, True),
        ("alpine:4", False, False),
    ],
)
def test_reference_filter_targets(pattern: str, familiar: bool, current: bool) -> None:
    ref = R.parse_normalized_named("alpine:3")
    assert R.familiar_match(pattern, ref) is familiar
    assert R.reference_filter_match(pattern, ref) is current


def test_reference_filter_on_a_digest_reference() -> None:
    ref = R.parse_normalized_named("busybox@sha256:" + HEX64)
    assert R.reference_filter_match("docker.io/library/busybox@*", ref) is True
    assert R.reference_filter_match("busybox", ref) is True
    # TagNameOnly leaves a digested reference alone: no `:latest` target.
    assert R.reference_filter_match("*:latest", ref) is False


def test_reference_filter_reports_a_bad_pattern() -> None:
    with pytest.raises(pathmatch.BadPattern):
        R.reference_filter_match("[-x]", R.parse_normalized_named("x"))


# --- Properties ---

_ALNUM = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
_SEPARATORS = st.sampled_from([".", "_", "__", "-", "--", "---"])


@st.composite
def path_components(draw: st.DrawFn) -> str:
    parts = [draw(_ALNUM)]
    for _ in range(draw(st.integers(0, 2))):
        parts += [draw(_SEPARATORS), draw(_ALNUM)]
    return "".join(parts)


_PATHS = st.lists(path_components(), min_size=1, max_size=4).map("/".join)
_DOMAIN_COMPONENTS = st.from_regex(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,6}[a-zA-Z0-9])?", fullmatch=True)
_HOSTS = st.one_of(
    st.lists(_DOMAIN_COMPONENTS, min_size=1, max_size=3).map(".".join),
    st.from_regex(r"\[[a-fA-F0-9:]{1,16}\]", fullmatch=True),
    st.just("localhost"),
)
_PORTS = st.one_of(st.just(""), st.integers(0, 99999).map(lambda n: f":{n}"))
_DOMAINS = st.builds(str.__add__, _HOSTS, _PORTS)
_TAGS = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
_DIGESTS = st.one_of(
    st.text("0123456789abcdef", min_size=64, max_size=64).map("sha256:".__add__),
    st.text("0123456789abcdef", min_size=128, max_size=128).map("sha512:".__add__),
)


@st.composite
def reference_parts(draw: st.DrawFn) -> tuple[str, str | None, str | None]:
    """A name as the grammar allows it (optional domain), an optional tag and digest."""
    name = draw(_PATHS)
    if draw(st.booleans()):
        name = draw(_DOMAINS) + "/" + name
    tag = draw(st.none() | _TAGS)
    digest = draw(st.none() | _DIGESTS)
    return name, tag, digest


KINDS = {
    (False, False): "name-only",
    (True, False): "tagged",
    (False, True): "digested",
    (True, True): "tagged+digested",
}


def _compose(name: str, tag: str | None, digest: str | None) -> str:
    return (
        name + (f":{tag}" if tag is not None else "") + (f"@{digest}" if digest is not None else "")
    )


def _normalizable(parts: tuple[str, str | None, str | None]) -> R.Named | None:
    """parse_normalized_named of the composed text, or None where Go refuses it too.

    The one refusal these strategies can produce: splitDockerDomain only takes a first
    component with `.` or `:` (or upper case) for a host, so `[0]/x` becomes
    `docker.io/[0]/x`, which the grammar rejects although parse accepts `[0]/x`.
    """
    text = _compose(*parts)
    first, slash, _ = parts[0].partition("/")
    if slash and first.startswith("[") and ":" not in first and first == first.lower():
        with pytest.raises(InvalidReference, match=f"^{R.ERR_REFERENCE_INVALID_FORMAT}$"):
            R.parse_normalized_named(text)
        return None
    return R.parse_normalized_named(text)


@given(reference_parts())
def test_parse_round_trips_the_string(parts: tuple[str, str | None, str | None]) -> None:
    name, tag, digest = parts
    text = _compose(name, tag, digest)
    ref = R.parse(text)
    assert str(ref) == text
    assert (ref.name, ref.tag, ref.digest) == (name, tag, digest)
    assert R.parse(str(ref)) == ref
    assert ref.kind == KINDS[tag is not None, digest is not None]


@settings(suppress_health_check=[HealthCheck.filter_too_much])
@given(reference_parts())
def test_normalized_round_trips(parts: tuple[str, str | None, str | None]) -> None:
    ref = _normalizable(parts)
    if ref is None:
        return
    familiar = R.familiar_string(ref)
    assert R.parse_normalized_named(str(ref)) == ref
    assert R.parse_named(str(ref)) == ref
    if not R.AnchoredIdentifierRegexp.match(familiar):
        again = R.parse_normalized_named(familiar)
        assert again == ref
        assert R.familiar_string(again) == familiar
    assert R.familiar_name(ref) == R.familiar_string(R.trim_named(ref))
    assert R.familiar_string(ref).startswith(R.familiar_name(ref))


@given(reference_parts())
def test_tag_name_only_and_docker_ref(parts: tuple[str, str | None, str | None]) -> None:
    ref = _normalizable(parts)
    if ref is None:
        return
    tagged = R.tag_name_only(ref)
    assert R.tag_name_only(tagged) == tagged
    if ref.tag is None and ref.digest is None:
        assert tagged == R.with_tag(ref, "latest")
    else:
        assert tagged == ref
    docker_ref = R.parse_docker_ref(str(ref))
    assert (docker_ref.tag is None) != (docker_ref.digest is None)
    assert docker_ref.name == ref.name
    assert docker_ref.digest == ref.digest


@given(reference_parts(), _TAGS, _DIGESTS)
def test_builders_agree_with_parse(
    parts: tuple[str, str | None, str | None], tag: str, digest: str
) -> None:
    name = parts[0]
    built = R.with_digest(R.with_tag(R.with_name(name), tag), digest)
    assert built == R.parse(f"{name}:{tag}@{digest}")
    assert R.trim_named(built) == R.with_name(name)


@given(_PATHS, st.data())
def test_upper_case_in_the_path_is_reported_as_such(path: str, data: st.DataObject) -> None:
    # The last component is always part of the path, never a domain.
    letters = [i for i, c in enumerate(path) if c.isalpha() and "/" not in path[i:]]
    if not letters:
        return
    i = data.draw(st.sampled_from(letters))
    with pytest.raises(InvalidReference, match=f"^{R.ERR_NAME_CONTAINS_UPPERCASE}$"):
        R.parse(path[:i] + path[i].upper() + path[i + 1 :])


@given(st.text(st.characters(codec="utf-8")))
def test_escaped_literal_pattern_matches_itself(text: str) -> None:
    escaped = re.sub(r"([*?\[\\])", r"\\\1", text)
    assert pathmatch.path_match(escaped, text) is True


# No class matches `/`: with such classes Go's matcher, which keeps the first place a chunk
# matches after a `*`, is no longer a backtracking regex (see the test after this one).
_PATTERN_TOKENS = st.sampled_from(["a", "b", "/", "*", "?", "[ab]", "[^a/]", "[a-b]", "\\*"])


def _glob_to_regex(tokens: list[str]) -> str:
    table = {"*": "[^/]*", "?": "[^/]", "\\*": re.escape("*")}
    return "".join(table.get(t, t if t.startswith("[") else re.escape(t)) for t in tokens)


@given(st.lists(_PATTERN_TOKENS, max_size=6), st.text("ab/*", max_size=8))
def test_path_match_agrees_with_a_regex_translation(tokens: list[str], name: str) -> None:
    pattern = "".join(tokens)
    expected = re.fullmatch(_glob_to_regex(tokens), name) is not None
    assert pathmatch.path_match(pattern, name) is expected


def test_path_match_does_not_backtrack_into_an_earlier_chunk() -> None:
    """Go commits to the first place `[^a]` matches (`*`), leaving `/` for the last `*`."""
    assert pathmatch.path_match("*[^a]*", "*/") is False
    assert re.fullmatch("[^/]*[^a][^/]*", "*/") is not None


@given(st.text("0123456789abcdef", min_size=64, max_size=64))
def test_ids_and_digests_are_digest_references(hex64: str) -> None:
    by_id = R.parse_any_reference(hex64)
    assert by_id == R.parse_any_reference("sha256:" + hex64)
    assert str(by_id) == "sha256:" + hex64
    assert R.parse_any_reference(hex64[:63]).name == "docker.io/library/" + hex64[:63]
