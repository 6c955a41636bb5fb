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
  ICAP error, and never reads more body than its limit; the connection's quick path
  answers only requests the strict parser reads, and ends each at the same byte.

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
from hypothesis import HealthCheck, example, given, settings
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
@given(st.sampled_from(["http", "https", "HTTPS", "ftp"]), st.text("abcXYZ019.-_~@:[]%\t", min_size=0, max_size=20),
       st.sampled_from(["", ":443", ":8080", ":99999", ":x"]), st.text("/abc?#=&%\t \xe9\xa0", max_size=12))
def test_the_quick_url_reading_agrees_with_urlsplit(scheme, host, port, rest):
    """_candidates reads the common URL form with a regular expression, and the rest with
    urlsplit: for any URL the two must name the same hosts and path."""
    from urllib.parse import urlsplit

    from scrubgate.icap.server import _candidates

    _count("icap url reading")
    target = f"{scheme}://{host}{port}{rest}"
    if " " in target:
        return  # a request line splits on spaces: such a target never gets here
    hosts, path = _candidates(f"GET {target} HTTP/1.1\r\n\r\n".encode("latin-1"))  # as the server reads it
    try:
        url = urlsplit(target)
    except ValueError:
        assert hosts == set(), target  # unreadable: judged as ours, by the full parse
        return
    h = url.netloc
    expected = h.rpartition("@")[2].rsplit(":", 1)[0].strip("[]").lower() if h.count(":") <= 1 or "[" in h else h.lower()
    assert hosts == {expected} and path == (url.path or "/"), (target, hosts, path, expected, url.path)


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["Host", "host", "HOST", "X-Host", "Hostname", "Accept"]),
                          st.text("ab.-:@[]1 \t\r\n\xe9", max_size=16)), max_size=5))
def test_the_quick_host_reading_agrees_with_a_line_by_line_reading(fields):
    """_candidates finds Host lines with find() on a lowercased copy: the same values as
    reading the head line by line."""
    from scrubgate.icap.server import _candidates, _host_name

    _count("icap host reading")
    head = b"GET /p HTTP/1.1\r\n" + b"".join(f"{k}:{v}\r\n".encode("latin-1") for k, v in fields) + b"\r\n"
    lines = head[:-4].split(b"\r\n")[1:]
    expected = {_host_name(line[5:].strip().decode("latin-1")) for line in lines if line[:5].lower() == b"host:"}
    assert _candidates(head)[0] == expected, head


@FUZZ
@given(st.sampled_from(["GET", "POST", "", "PUT x"]),
       st.sampled_from(["https://", "http://", "HTTPS://", "/", "ftp://"]),
       st.sampled_from(["web.whatsapp.com", "WEB.WhatsApp.com", "rupload.facebook.com", "bank.example.org",
                        "upload.messenger.com", "discord.com.", "x", ""]),
       st.sampled_from(["", ":443", ":8080", ":99999", ":"]),
       st.sampled_from(["", "/", "/messenger_eb/1", "/a?b", "#f", "/x y", "/\xe9"]),
       st.lists(st.tuples(st.sampled_from(["Host", "HOST", "host ", "X-Host"]),
                          st.sampled_from([" web.whatsapp.com", "bank.example.org:80", " discord.com \t",
                                           " rupload.facebook.com:", " u@web.whatsapp.com", " [::1]:80",
                                           " a\x0bb", "", " x:y", " example.org:123456"])), max_size=3))
@example("GET", "https://", "bank.example.org", "", "/", [("Host", " web.whatsapp.com")])
@example("GET", "https://", "bank.example.org", "", "/", [("HOST", " discord.com \t")])
@example("GET", "https://", "bank.example.org", "", "/", [("Host", " u@web.whatsapp.com")])
@example("POST", "https://", "rupload.facebook.com", "", "/messenger_eb/1", [])
@example("GET", "http://", "WEB.WhatsApp.com", ":8080", "/a?b", [("Host", "bank.example.org:80")])
def test_the_quick_ours_agrees_with_reading_every_candidate(method, scheme, host, port, path, fields):
    """_ours reads the common head with two regular expressions and hands the rest to
    _ours_by_candidates: for any head both must say the same."""
    from scrubgate.icap.server import _ours, _ours_by_candidates

    _count("icap ours")
    target = path if scheme == "/" else f"{scheme}{host}{port}{path}"
    head = (f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}:{v}\r\n" for k, v in fields) + "\r\n").encode("latin-1")
    assert _ours(PLAN.catalogue, head) == _ours_by_candidates(PLAN.catalogue, head), head


def _edited(seed: bytes, edits: list[tuple[str, int, bytes]]) -> bytearray:
    data = bytearray(seed)
    for op, pos, blob in edits:
        pos = min(pos, len(data))
        if op == "flip" and pos < len(data):
            data[pos] ^= blob[0] | 1
        elif op == "cut":
            del data[pos:pos + len(blob)]
        else:
            data[pos:pos] = blob
    return data


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
    data = _edited(ICAP_SEEDS[seed], edits)

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


_OTHER_HEAD = b"GET https://bank.example.org/a?b=1 HTTP/1.1\r\nHost: bank.example.org\r\nAccept: */*\r\n\r\n"
ICAP_SEEDS += [
    (f"REQMOD icap://h/reqmod ICAP/1.0\r\nHost: h\r\nAllow: 204\r\nEncapsulated: req-hdr=0, "
     f"null-body={len(_OTHER_HEAD)}\r\n\r\n").encode() + _OTHER_HEAD,
    (f"REQMOD icap://h/reqmod ICAP/1.0\r\nHost: h\r\nAllow: 204\r\nPreview: 0\r\nEncapsulated: req-hdr=0, "
     f"req-body={len(_OTHER_HEAD)}\r\n\r\n").encode() + _OTHER_HEAD + b"0; ieof\r\n\r\n",
    (f"REQMOD icap://h/reqmod ICAP/1.0\r\nHost: h\r\nAllow: 204\r\nEncapsulated: req-hdr=0, "
     f"null-body={len(_OTHER_HEAD)}\r\n\r\n").encode() + _OTHER_HEAD.replace(b"bank.example.org", b"slack.com"),
]
_PIPELINED = ICAP_SEEDS[4] + ICAP_SEEDS[6] + ICAP_SEEDS[5] + ICAP_SEEDS[3] + ICAP_SEEDS[1][:ICAP_SEEDS[1].index(b"0\r\n\r\n") + 5] + ICAP_SEEDS[3] + ICAP_SEEDS[0]


class _QuickServer:
    """Stands in for IcapServer: answers what the quick look offers it unless it is ours,
    by the server's own test, against the shipped policy's catalogue."""

    def quick_answer(self, http_head):
        from scrubgate.icap.server import _ours

        return None if _ours(PLAN.catalogue, http_head) else b"<answer>"

    def admit_connection(self, conn):
        return True

    def release_connection(self, conn):
        pass


class _Transport:
    def __init__(self):
        self.written = []
        self.closing = False

    def write(self, data):
        self.written.append(data)

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass

    def get_extra_info(self, name, default=None):
        return default


@FUZZ
@given(st.sampled_from(range(len(ICAP_SEEDS) + 1)),
       st.lists(st.tuples(st.sampled_from(["flip", "cut", "insert"]), st.integers(0, 900),
                          st.binary(min_size=1, max_size=16)), max_size=5),
       st.lists(st.integers(1, 900), max_size=4))
def test_the_icap_quick_path_answers_only_what_the_strict_parser_reads(seed, edits, cuts):
    """The connection's quick path (204s from the heads alone, scrubgate icap) against the
    stream parser on the same bytes, arriving in pieces: every request the quick path
    answers, the strict parser reads too, ending at the same byte; what the quick path
    does not answer is left whole for the stream path."""
    import asyncio

    from scrubgate.icap.connection import IcapConnection
    from scrubgate.icap.protocol import BodyTooLarge, IcapError, read_chunks, read_request
    from scrubgate.icap.server import SERVICES, _ours

    _count("icap quick path")
    data = bytes(_edited((ICAP_SEEDS + [_PIPELINED])[seed], edits))

    async def go():
        transport = _Transport()
        conn = IcapConnection(_QuickServer(), 60)
        handed = []
        conn._start_task = lambda: handed.append(True)
        conn.connection_made(transport)
        bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
        fed = 0
        for a, b in zip(bounds, bounds[1:]):
            if handed:  # the stream path has the connection now
                break
            piece = data[a:b]
            conn.get_buffer(len(piece))[:len(piece)] = piece
            conn.buffer_updated(len(piece))
            fed = b
        left = len(conn.inbox.buf) + len(data) - fed
        answered = len(transport.written)

        reader = asyncio.StreamReader(limit=64 * 1024)
        reader.feed_data(data)
        reader.feed_eof()
        for i in range(answered):
            try:
                req = await read_request(reader)
                if req.has_body:
                    await read_chunks(reader, req, 64)
                    assert not req.body, "the quick path answered a request with body bytes"
            except (IcapError, EOFError, BodyTooLarge) as e:
                raise AssertionError(f"the quick path answered request {i}, the strict parser refused it: {e!r}")
            # ... and the stream path would have answered it 204 too
            assert req.method == "REQMOD" and req.service in SERVICES and req.allow_204
            assert req.headers.get("connection", "").lower() != "close"
            assert not _ours(PLAN.catalogue, req.http_head)
        consumed = len(data) - len(await reader.read())
        assert consumed == len(data) - left, (consumed, len(data), left)

    asyncio.run(go())


def _write_report(session, final: bool) -> None:
    """bench/results/fuzz-DATE.md for the long run; rewritten after every target, so that a
    run stopped early still leaves what it did."""
    path = os.environ.get("SCRUBGATE_FUZZ_REPORT")
    if not path:
        return
    import platform

    seconds = time.monotonic() - STARTED
    lines = [f"# Fuzzing (hypothesis), {time.strftime('%Y-%m-%d')}", "",
             f"Command: `make fuzz` (SCRUBGATE_FUZZ_EXAMPLES={EXAMPLES})  ",
             f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
             f"Python {platform.python_version()}; {seconds:.0f} s"
             + ("" if final else " so far (the run had not finished when this was written)"), "",
             "| target | inputs |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in sorted(RUNS.items())]
    failed = session.testsfailed
    lines += [f"| **total** | **{sum(RUNS.values())}** |", ""]
    lines += [f"**{failed} target(s) failed**: the falsifying inputs are in the test output; "
              "fix each and keep the input in tests/fuzz_seeds/crashes/." if failed else
              "No crash (an exception other than Refused, or the engine's engine_error catch-all) "
              "and no pass-through of an uninspected file: each test would have failed."]
    Path(path).write_text("\n".join(lines) + "\n")


@pytest.fixture(autouse=True)
def _report_each(request):
    yield
    _write_report(request.session, final=False)


@pytest.fixture(scope="module", autouse=True)
def _report(request):
    yield
    _write_report(request.session, final=True)
