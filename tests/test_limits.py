"""Limits and fail-open/closed, on a gateway with a deliberately small policy."""

import shutil

import httpx
import pytest

from conftest import ROOT, start_gateway, stop_gateway
from samples import encode, picture


@pytest.fixture(scope="module")
def small_gateway(tmp_path_factory, upstream):
    tmp = tmp_path_factory.mktemp("small")
    policies = tmp / "policies"
    shutil.copytree(ROOT / "policies", policies)
    policy = policies / "default.yaml"
    policy.write_text(policy.read_text().replace("max_body_bytes: 52428800", "max_body_bytes: 200000")
                      .replace("max_payloads: 32", "max_payloads: 2"))
    gw = start_gateway(tmp, upstream, policy=policy)
    yield gw
    stop_gateway(gw)


def test_declared_giant_body_is_blocked_before_forwarding(small_gateway, upstream):
    body = b"\x00" * 300_000
    with small_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?giant=1", content=body,
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403 and r.json()["reason"] == "too_large"
    assert [q for q in upstream.received("/api/files.upload") if "giant" in q.path] == []


def test_chunked_transfer_body_over_the_limit_is_blocked(small_gateway, upstream):
    def chunks():
        for _ in range(30):
            yield b"\x01" * 10_000  # 300 kB, no Content-Length

    with small_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?streamed=1", content=chunks(),
                   headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 403 and r.json()["reason"] == "too_large"
    assert [q for q in upstream.received("/api/files.upload") if "streamed" in q.path] == []


def test_too_many_files_in_one_request(small_gateway, upstream):
    png = encode(picture(32, 32), "PNG")
    files = [("f", (f"{i}.png", png, "image/png")) for i in range(3)]
    with small_gateway.client() as c:
        r = c.post("https://slack.com/api/files.upload?many=1", files=files)
    assert r.status_code == 403 and r.json()["reason"] == "too_large"


def test_readyz_and_healthz(small_gateway):
    base = f"http://127.0.0.1:{small_gateway.metrics_port}"
    assert httpx.get(base + "/healthz").status_code == 200
    r = httpx.get(base + "/readyz")
    assert r.status_code == 200 and "default" in r.text
