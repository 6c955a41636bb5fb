"""Carriers: multipart rebuilt byte for byte, JSON/form/base64 found, encodings bounded."""

import base64
import gzip
import json

import pytest

from metadata_samples import encode, picture
from scrubgate.carriers import encoding, multipart
from scrubgate.carriers.extract import extract
from scrubgate.engine.verdict import Refused

JPEG = encode(picture(64, 48), "JPEG")


def _multipart(boundary: bytes, parts: list[tuple[bytes, bytes]]) -> bytes:
    out = b"preamble\r\n"
    for headers, content in parts:
        out += b"--" + boundary + b"\r\n" + headers + b"\r\n\r\n" + content + b"\r\n"
    return out + b"--" + boundary + b"--\r\nepilogue"


def test_multipart_rebuild_is_byte_exact_around_the_replaced_part():
    b = b"----WebKitFormBoundaryAbC"
    binary = bytes(range(256)) * 4 + b"\r\n--not-the-boundary\r\n"
    body = _multipart(b, [
        (b'Content-Disposition: form-data; name="token"', b"xyz"),
        (b'Content-Disposition: form-data; name="file"; filename="r\xc3\xb6ntgen.jpg"\r\nContent-Type: image/jpeg', JPEG),
        (b'Content-Disposition: form-data; name="blob"; filename="b.bin"', binary),
    ])
    tree = extract(body, "multipart/form-data; boundary=" + b.decode())
    payloads = tree.payloads()
    assert [p.kind.format for p in payloads] == ["jpeg", "unknown"]
    assert tree.rebuild() == body  # nothing changed: identical
    payloads[0].replacement = b"NEW"
    rebuilt = tree.rebuild()
    assert rebuilt == body.replace(JPEG, b"NEW")


def test_multipart_part_content_length_is_fixed():
    b = b"xyz"
    body = _multipart(b, [(b'Content-Disposition: form-data; name="f"; filename="a.jpg"\r\nContent-Length: %d' % len(JPEG), JPEG)])
    tree = extract(body, 'multipart/form-data; boundary="xyz"')
    tree.payloads()[0].replacement = b"12345"
    assert b"Content-Length: 5\r\n\r\n12345" in tree.rebuild()


def test_malformed_multipart_is_refused():
    with pytest.raises(Refused) as e:
        extract(b"--abc\r\nContent-Disposition: form-data; name=a\r\n\r\nno end", "multipart/form-data; boundary=abc")
    assert e.value.reason == "undecodable"


def test_json_base64_and_data_urls_are_found_and_rebuilt():
    doc = {"a": {"b": [base64.b64encode(JPEG).decode()]}, "c": "data:image/jpeg;base64," + base64.b64encode(JPEG).decode(),
           "text": "hello", "token": "A" * 100}
    tree = extract(json.dumps(doc).encode(), "application/json")
    ps = tree.payloads()
    assert len(ps) == 2
    for p in ps:
        p.replacement = b"\xff\xd8\xffNEW"
    out = json.loads(tree.rebuild())
    assert base64.b64decode(out["a"]["b"][0]) == b"\xff\xd8\xffNEW"
    assert out["c"].startswith("data:image/jpeg;base64,") and out["token"] == "A" * 100


def test_form_fields_with_base64_are_found():
    from urllib.parse import urlencode
    body = urlencode({"media_data": base64.b64encode(JPEG).decode(), "status": "hi"}).encode()
    tree = extract(body, "application/x-www-form-urlencoded")
    assert [p.carrier for p in tree.payloads()] == ["form"]


def test_content_type_is_not_trusted():
    assert extract(JPEG, "text/plain").payloads()[0].kind.format == "jpeg"
    assert extract(b'{"text": "hi"}', "image/jpeg").payloads() == []


def test_unknown_binary_is_a_file_only_where_files_go():
    blob = bytes(range(256)) * 8
    assert extract(blob, "application/octet-stream").payloads() == []  # an API's protobuf
    assert extract(blob, "application/octet-stream", upload=True).payloads()[0].kind.content == "other"


def test_encoding_limits():
    with pytest.raises(Refused) as e:
        encoding.decode(gzip.compress(b"\x00" * 10_000_000), "gzip", max_size=1_000_000)
    assert e.value.reason == "too_large"
    with pytest.raises(Refused) as e:
        encoding.decode(gzip.compress(b"abc" * 1000)[:-10], "gzip", max_size=1_000_000)
    assert e.value.reason == "undecodable"
    with pytest.raises(Refused):
        encoding.decode(b"x", "compress", 100)
    for coding in ("gzip", "deflate", "br", "zstd", "gzip, br"):
        assert encoding.decode(encoding.encode(b"hello" * 100, coding), coding, 10_000) == b"hello" * 100


def test_boundary_parsing():
    assert multipart.boundary_of('multipart/form-data; boundary="a b"') == b"a b"
    assert multipart.boundary_of("application/json") is None


def test_text_that_only_starts_like_base64_is_left_alone():
    b64 = base64.b64encode(encode(picture(400, 300), "JPEG")).decode()
    assert len(b64) > 8192  # longer than any prefix a quick check would look at
    doc = {"note": b64 + " -- and then a sentence that is not base64 at all!"}
    assert extract(json.dumps(doc).encode(), "application/json").payloads() == []
    wrapped = "\r\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))  # MIME line breaks
    assert len(extract(json.dumps({"m": wrapped}).encode()).payloads()) == 1


def test_text_files_are_files_where_files_go():
    body = _multipart(b"b", [(b'Content-Disposition: form-data; name="file"; filename="list.csv"', b"name,dob\nA,1\n"),
                             (b'Content-Disposition: form-data; name="comment"', b"see attached")])
    payloads = extract(body, "multipart/form-data; boundary=b").payloads()
    assert [(p.label, p.kind.content) for p in payloads] == [("part 1", "other")]
    assert extract(b"plain words", "text/plain").payloads() == []  # a chat message
    assert extract(b"plain words", "text/plain", upload=True).payloads()[0].kind.content == "other"
