"""Go's encoding/json error texts, as the daemon answers a `platform` that does not decode."""

from __future__ import annotations

import pytest

from catalog.docker.gojson import GoJSONError, check_syntax, quote_char, unmarshal_struct

PLATFORM = {"architecture": "string", "os": "string", "os.features": "[]string"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "unexpected end of JSON input"),
        ("   ", "unexpected end of JSON input"),
        ("x", "invalid character 'x' looking for beginning of value"),
        ("linux/amd64", "invalid character 'l' looking for beginning of value"),
        ("{", "unexpected end of JSON input"),
        ('{"os":"linux"', "unexpected end of JSON input"),
        ("{os:1}", "invalid character 'o' looking for beginning of object key string"),
        ('{"a":1,}', "invalid character '}' looking for beginning of object key string"),
        ('{"os" "x"}', "invalid character '\"' after object key"),
        ('{"a":1 2}', "invalid character '2' after object key:value pair"),
        ("[1 2]", "invalid character '2' after array element"),
        ("[1,]", "invalid character ']' looking for beginning of value"),
        ("tru", "unexpected end of JSON input"),
        ("trux", "invalid character 'x' in literal true (expecting 'e')"),
        ("nUll", "invalid character 'U' in literal null (expecting 'u')"),
        ("-x", "invalid character 'x' in numeric literal"),
        ("1.x", "invalid character 'x' after decimal point in numeric literal"),
        ("1e+x", "invalid character 'x' in exponent of numeric literal"),
        ("01", "invalid character '1' after top-level value"),
        ("{} {}", "invalid character '{' after top-level value"),
        ('"\\q"', "invalid character 'q' in string escape code"),
        ('"\\u12g4"', "invalid character 'g' in \\u hexadecimal character escape"),
        ('"a\tb"', "invalid character '\\t' in string literal"),
        ("'os'", "invalid character '\\'' looking for beginning of value"),
        ("\\", "invalid character '\\\\' looking for beginning of value"),
        ("\x01", "invalid character '\\x01' looking for beginning of value"),
        ("é", "invalid character 'Ã' looking for beginning of value"),
    ],
)
def test_syntax_errors_in_gos_words(text: str, message: str) -> None:
    with pytest.raises(GoJSONError) as caught:
        check_syntax(text.encode())
    assert str(caught.value) == message


@pytest.mark.parametrize("text", ["{}", " null ", '{"a":[1,2.5e-3,true,false,null,"\\u00e9"]}'])
def test_valid_documents(text: str) -> None:
    check_syntax(text.encode())


def test_quote_char_as_go_shows_bytes() -> None:
    assert quote_char(ord('"')) == "'\"'"
    assert quote_char(0x80) == "'\\u0080'"
    assert quote_char(ord("\n")) == "'\\n'"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "json: cannot unmarshal array into Go value of type v1.Platform"),
        ('"linux"', "json: cannot unmarshal string into Go value of type v1.Platform"),
        (
            '{"os":1}',
            "json: cannot unmarshal number into Go struct field Platform.os of type string",
        ),
        (
            '{"OS":true}',
            "json: cannot unmarshal bool into Go struct field Platform.os of type string",
        ),
        (
            '{"os.features":"x"}',
            "json: cannot unmarshal string into Go struct field Platform.os.features of type"
            " []string",
        ),
        (
            '{"os.features":[{}]}',
            "json: cannot unmarshal object into Go struct field Platform.os.features of type"
            " string",
        ),
    ],
)
def test_type_errors_in_gos_words(text: str, message: str) -> None:
    with pytest.raises(GoJSONError) as caught:
        unmarshal_struct(text, go_type="v1.Platform", fields=PLATFORM)
    assert str(caught.value) == message


def test_keys_match_as_go_matches_them() -> None:
    decoded = unmarshal_struct(
        '{"OS":"windows","os":"linux","Architecture":"arm64","other":1,"os.features":null}',
        go_type="v1.Platform",
        fields=PLATFORM,
    )
    assert decoded == {"os": "linux", "architecture": "arm64"}
    assert unmarshal_struct("null", go_type="v1.Platform", fields=PLATFORM) == {}


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_nesting_is_bounded_before_pythons_recursion_limit(opening: str) -> None:
    """Untrusted JSON (a `platform` parameter) nested 50,000 deep is one error, not a
    RecursionError; 100 levels still parse."""
    with pytest.raises(GoJSONError, match=r"^exceeded max depth$"):
        check_syntax((opening * 50_000).encode())
    check_syntax(b"[" * 100 + b"]" * 100)
    with pytest.raises(GoJSONError, match=r"^exceeded max depth$"):
        check_syntax(b"[" * 101 + b"]" * 101)
