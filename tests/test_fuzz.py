"""Property-based fuzzing of everything that parses traffic (hypothesis).

Inputs are the seed corpus (tests/fuzz_seeds: valid files and bodies of every kind,
identifiers planted in their metadata) mutated -- bytes flipped, cut, inserted,
slices repeated -- plus random multipart bodies. The properties:

- nothing raises but `Refused`; the engine's catch-all (`engine_error`, which turns an
  unexpected exception into a refusal) never fires;
- nothing passes uninspected: an engine verdict that is not a refusal has output, and
  a request body the job lets through either had no file in it or was cleaned;
- a multipart body that nothing changed is rebuilt byte for byte;
- the ICAP framing (`scrubgate icap`) reads a mutated request or refuses it with an
  ICAP error, and never reads more body than its limit.

`make test` runs a short pass (SCRUBGATE_FUZZ_EXAMPLES, default 60 per target);
`make fuzz` a long one, and writes how many inputs each target took to
bench/results/fuzz-DATE.md (SCRUBGATE_FUZZ_REPORT).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scrubgate.carriers import encoding, multipart
from scrubgate.carriers.extract import extract
from scrubgate.engine import EngineOptions, Refused, sanitize, sniff
from scrubgate.job import BodyJob, inspect_body
from scrubgate.policy import Policy

SEEDS = {p.stem: p.read_bytes() for p in sorted((Path(__file__).parent / "fuzz_seeds").glob("*.seed"))}
EXAMPLES = int(os.environ.get("SCRUBGATE_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 60, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
RUNS: Counter = Counter()  # inputs per target, for the long run's report
STARTED = time.monotonic()
IMAGES = ["jpeg", "png", "gif", "tiff", "bmp", "webp", "dicom", "zip"]
BODIES = ["multipart", "json", "form", "gzip-json", "deflate-json"]
PLAN = Policy.load(Path(__file__).resolve().parents[1] / "policies" / "default.yaml")


@st.composite
def mutated(draw, names: list[str]) -> tuple[str, bytes]:
    name = draw(st.sampled_from(names))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(0, 6))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "repeat", "zero"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            del data[pos:pos + draw(st.integers(1, 512))]
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif op == "repeat":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 256))]
        elif op == "zero":
            n = draw(st.integers(1, 32))
            data[pos:pos + n] = bytes(len(data[pos:pos + n]))
    return name, bytes(data)


def _count(target: str) -> None:
    RUNS[target] += 1


CRASHES = sorted((Path(__file__).parent / "fuzz_seeds" / "crashes").glob("*.bin"))


@pytest.mark.parametrize("path", CRASHES, ids=[p.stem for p in CRASHES])
def test_inputs_that_once_crashed_are_refused_cleanly(path):
    """Every input the fuzzer ever found a crash with, kept as a regression."""
    for options in (EngineOptions(pixels=False), EngineOptions()):
        v = sanitize(path.read_bytes(), options)
        assert v.refused != "engine_error", v.detail
        assert v.refused is not None or v.output is not None


@FUZZ
@given(st.one_of(mutated(IMAGES + BODIES), st.tuples(st.just("random"), st.binary(max_size=2048))))
def test_sniff_never_raises(case):
    _count("sniff")
    sniff(case[1])


@FUZZ
@given(mutated(IMAGES))
def test_every_format_strip_refuses_cleanly_or_cleans(case):
    """Metadata path of every format family, DICOM header and ZIP included."""
    _count("format strip")
    name, data = case
    v = sanitize(data, EngineOptions(pixels=False))
    assert v.refused != "engine_error", (name, v.detail)  # an exception the handler did not expect
    if v.refused is None:
        assert v.output is not None, name  # passed means cleaned, never "no answer"


@settings(FUZZ, max_examples=max(10, EXAMPLES // 6))
@given(mutated(["jpeg", "png", "dicom"]))
def test_pixel_path_refuses_cleanly_or_cleans(case):
    """The decoders and the scanner (OCR included) on damaged pictures: slower, fewer inputs."""
    _count("pixel path")
    name, data = case
    v = sanitize(data)
    assert v.refused != "engine_error", (name, v.detail)
    if v.refused is None:
        assert v.output is not None, name


@FUZZ
@given(mutated(BODIES), st.sampled_from(["", "gzip", "deflate", "br", "zstd", "gzip, deflate", "x-unknown"]))
def test_content_encodings_only_refuse(case, coding):
    _count("encodings")
    try:
        encoding.decode(case[1], coding, 1 << 20)
    except Refused:
        pass


@FUZZ
@given(mutated(BODIES + IMAGES),
       st.sampled_from(["multipart/form-data; boundary=fuzzboundary42", "application/json",
                        "application/x-www-form-urlencoded", "image/jpeg", "", "text/plain"]))
def test_carriers_only_refuse(case, content_type):
    _count("carriers")
    try:
        tree = extract(case[1], content_type, upload=True)
        tree.payloads()
    except Refused:
        pass


_PART = st.tuples(st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8),
                  st.binary(max_size=300))


@FUZZ
@given(st.lists(_PART, min_size=1, max_size=5), st.binary(max_size=40))
def test_untouched_multipart_is_rebuilt_byte_for_byte(parts, preamble):
    _count("multipart rebuild")
    boundary = b"b0und4ry-fuzz"
    preamble = preamble.replace(boundary, b"")
    body = (preamble + b"\r\n") if preamble else b""
    for name, content in parts:
        content = content.replace(b"--" + boundary, b"")
        body += (b"--" + boundary + b"\r\nContent-Disposition: form-data; name=\"" + name.encode() + b"\"\r\n\r\n"
                 + content + b"\r\n")
    body += b"--" + boundary + b"--\r\n"
    try:
        parsed = multipart.parse(body, boundary)
    except Refused:
        return  # a content that happens to end in a delimiter-like run: refused, fine
    assert multipart.rebuild(body, parsed, {}) == body


@FUZZ
@given(mutated(BODIES + IMAGES),
       st.sampled_from(["multipart/form-data; boundary=fuzzboundary42", "application/json",
                        "application/x-www-form-urlencoded", "image/jpeg", "application/octet-stream"]),
       st.sampled_from(["", "gzip", "deflate"]))
def test_a_request_body_is_blocked_cleaned_or_holds_no_file(case, content_type, coding):
    """The whole job a worker runs. A body let through unchanged must hold no file the
    policy wants cleaned: nothing passes uninspected."""
    _count("request body job")
    name, body = case
    service = PLAN.catalogue.by_id["slack"]
    plan = PLAN.plan_for(service, b"k" * 32)
    out = inspect_body(BodyJob(body, content_type, coding, True, False, plan))
    assert out.action in ("allow", "sanitize", "block", "monitor"), out.action
    assert out.reason != "engine_error", (name, out.detail)
    if out.action != "block" and out.new_body is None:
        for p in out.payloads:
            assert p.action == "allow" or not p.changed, (name, p.content, p.action)
            if p.content in ("image", "dicom", "archive"):
                assert p.action != "sanitize" or p.sha256_out == p.sha256_in, name  # nothing to remove


_ICAP_HEAD = b"POST https://slack.com/api/files.upload HTTP/1.1\r\nHost: slack.com\r\nContent-Length: 5\r\n\r\n"
ICAP_SEEDS = [
    b"OPTIONS icap://127.0.0.1/reqmod ICAP/1.0\r\nHost: 127.0.0.1\r\nEncapsulated: null-body=0\r\n\r\n",
    (f"REQMOD icap://h/reqmod ICAP/1.0\r\nAllow: 204\r\nPreview: 0\r\nEncapsulated: req-hdr=0, "
     f"req-body={len(_ICAP_HEAD)}\r\n\r\n").encode() + _ICAP_HEAD + b"0\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    (f"REQMOD icap://h/reqmod ICAP/1.0\r\nPreview: 5\r\nEncapsulated: req-hdr=0, "
     f"req-body={len(_ICAP_HEAD)}\r\n\r\n").encode() + _ICAP_HEAD + b"5\r\nhello\r\n0; ieof\r\n\r\n",
    (f"REQMOD icap://h/reqmod ICAP/1.0\r\nEncapsulated: req-hdr=0, null-body={len(_ICAP_HEAD)}\r\n\r\n").encode()
    + _ICAP_HEAD,
]


@FUZZ
@given(st.sampled_from(range(len(ICAP_SEEDS))), st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert"]),
                                                          st.integers(0, 400), st.binary(min_size=1, max_size=16)),
                                                max_size=5))
def test_the_icap_parser_only_refuses(seed, edits):
    """The ICAP framing (scrubgate icap): a mutated request is read, or refused with an
    ICAP error; never another exception, never more body than the limit."""
    import asyncio

    from scrubgate.icap.protocol import BodyTooLarge, IcapError, read_chunks, read_request

    _count("icap parser")
    data = bytearray(ICAP_SEEDS[seed])
    for op, pos, blob in edits:
        pos = min(pos, len(data))
        if op == "flip" and pos < len(data):
            data[pos] ^= blob[0] | 1
        elif op == "cut":
            del data[pos:pos + len(blob)]
        else:
            data[pos:pos] = blob

    async def go():
        reader = asyncio.StreamReader(limit=64 * 1024)
        reader.feed_data(bytes(data))
        reader.feed_eof()
        try:
            req = await read_request(reader)
            if req.has_body:
                await read_chunks(reader, req, 64)
                assert len(req.body) <= 64
            if req.http_head:
                assert req.http_head.endswith(b"\r\n\r\n")
        except (IcapError, EOFError, BodyTooLarge):
            pass

    asyncio.run(go())


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    path = os.environ.get("SCRUBGATE_FUZZ_REPORT")
    if path:
        import platform

        seconds = time.monotonic() - STARTED
        lines = [f"# Fuzzing (hypothesis), {time.strftime('%Y-%m-%d')}", "",
                 f"Command: `make fuzz` (SCRUBGATE_FUZZ_EXAMPLES={EXAMPLES})  ",
                 f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                 f"Python {platform.python_version()}; {seconds:.0f} s", "",
                 "| target | inputs |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in sorted(RUNS.items())]
        failed = request.session.testsfailed
        lines += [f"| **total** | **{sum(RUNS.values())}** |", ""]
        lines += [f"**{failed} target(s) failed**: the falsifying inputs are in the test output; "
                  "fix each and keep the input in tests/fuzz_seeds/crashes/." if failed else
                  "No crash (an exception other than Refused, or the engine's engine_error catch-all) "
                  "and no pass-through of an uninspected file: each test would have failed."]
        Path(path).write_text("\n".join(lines) + "\n")
