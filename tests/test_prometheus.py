"""A real Prometheus scrapes a real `scrubgate run`.

The Debian `prometheus` binary is started on a loopback port with a scrape
config pointing at the gateway's /metrics (every second). Uploads go through
the proxy, then the test asks Prometheus' HTTP API, in PromQL, for what an
operator's dashboard and alerts would ask: flows, blocks by reason,
identifiers found in pixels, the scrape health, a latency quantile from the
histogram buckets and the policy in force.
"""

from __future__ import annotations

import io
import json
import math
import shutil
import subprocess
import time

import httpx
import pytest

from conftest import free_ports, start_gateway, stop_gateway, stop_process

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(
    PROMETHEUS is None,
    reason="the prometheus binary is not installed (apt-get install prometheus; scripts/setup.sh --test does it)")

TIMEOUT = 60.0


class Prometheus:
    def __init__(self, proc: subprocess.Popen, port: int, log_path):
        self.proc, self.port, self.log_path = proc, port, log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def query(self, promql: str) -> list[dict]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": promql}, timeout=5)
        doc = r.json()
        assert r.status_code == 200 and doc["status"] == "success", (promql, r.text)
        return doc["data"]["result"]

    def wait_for(self, promql: str, check, deadline: float) -> list[dict]:
        """Poll a query until check(result) holds; fail with the last answer when time runs out."""
        last: list[dict] = []
        while time.monotonic() < deadline:
            last = self.query(promql)
            if last and check(last):
                return last
            time.sleep(0.5)
        pytest.fail(f"Prometheus never answered {promql!r} as expected; last answer: {json.dumps(last)}\n"
                    f"targets: {httpx.get(self.url + '/api/v1/targets', timeout=5).text}")


def value(result: list[dict]) -> float:
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, upstream):
    """A dedicated gateway (so counts are exact) and a Prometheus scraping it."""
    tmp = tmp_path_factory.mktemp("prometheus")
    gw = start_gateway(tmp_path_factory.mktemp("prometheus-gateway"), upstream)
    port, = free_ports(1)
    config = tmp / "prometheus.yml"
    config.write_text(f"""\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: scrubgate
    scrape_interval: 1s
    static_configs:
      - targets: ["127.0.0.1:{gw.metrics_port}"]
""")
    promtool = shutil.which("promtool")
    if promtool:  # the config an operator would copy is valid, says Prometheus' own checker
        check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True,
                               timeout=30)
        assert check.returncode == 0, check.stdout + check.stderr
    log_path = tmp / "prometheus.log"
    logf = open(log_path, "wb")
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
                            stdout=logf, stderr=subprocess.STDOUT)
    prom = Prometheus(proc, port, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited with {proc.returncode}:\n{prom.log()}")
            try:
                if httpx.get(f"{prom.url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prometheus not ready in 30 s:\n{prom.log()}")
            time.sleep(0.2)
        yield gw, prom
    finally:
        stop_process(proc)
        logf.close()
        stop_gateway(gw)


def test_prometheus_scrapes_the_gateway(scraped):
    from pictures import viewer_screen

    gw, prom = scraped
    deadline = time.monotonic() + TIMEOUT
    # The target is up before any traffic: the first scrape sees the counters at zero.
    prom.wait_for('up{job="scrubgate"}', lambda r: value(r) == 1, deadline)

    buf = io.BytesIO()
    viewer_screen().save(buf, "PNG")
    with gw.client() as c:
        r = c.post("https://discord.com/api/v9/channels/1/messages",
                   files={"files[0]": ("image.png", buf.getvalue(), "image/png")})
        assert r.status_code == 200, r.text
        r = c.post("https://web.telegram.org/apiw1", content=bytes(range(256)) * 8,
                   headers={"Content-Type": "image/jpeg", "Accept": "application/json"})
        assert r.status_code == 403 and r.json()["reason"] == "opaque_service"
        r = c.post("https://slack.com/api/chat.postMessage", json={"channel": "C1", "text": "ward round at 10"})
        assert r.status_code == 200

    prom.wait_for("sum(scrubgate_flows_total)", lambda r: value(r) == 3, deadline)
    by_action = {s["metric"]["action"]: float(s["value"][1])
                 for s in prom.query("sum by (action) (scrubgate_flows_total)")}
    assert by_action == {"sanitize": 1, "block": 1, "allow": 1}, by_action
    blocks = prom.wait_for('scrubgate_blocks_total{reason="opaque_service"}', lambda r: value(r) == 1, deadline)
    assert blocks[0]["metric"]["service"] == "telegram" and blocks[0]["metric"]["job"] == "scrubgate"
    pixels = prom.wait_for('sum(scrubgate_identifiers_total{source="pixels"})', lambda r: value(r) >= 1, deadline)
    assert value(pixels) >= 3  # the banner carries a name, an NHS number, a date of birth, an MRN ...
    assert prom.query('scrubgate_identifiers_total{source="pixels",kind="national_id"}'), "NHS number not counted"
    up = prom.query('up{job="scrubgate"} == 1')
    assert len(up) == 1 and up[0]["metric"]["instance"] == f"127.0.0.1:{gw.metrics_port}"

    prom.wait_for("sum(scrubgate_added_latency_seconds_count)", lambda r: value(r) == 3, deadline)
    q = prom.query("histogram_quantile(0.99, sum by (le) (scrubgate_added_latency_seconds_bucket))")
    p99 = value(q)
    # The OCR'd screenshot dominates; a finite, positive figure under the job timeout.
    assert math.isfinite(p99) and 0 < p99 < 30, p99
    p50 = value(prom.query("histogram_quantile(0.5, sum by (le) (scrubgate_added_latency_seconds_bucket))"))
    assert 0 < p50 <= p99
    # The rate form a dashboard would use also answers (the window holds the zero and the 3).
    rate = prom.query("sum(rate(scrubgate_added_latency_seconds_count[1m]))")
    assert rate and value(rate) > 0

    info = prom.wait_for("scrubgate_policy_info", lambda r: value(r) == 1, deadline)
    assert len(info) == 1 and info[0]["metric"]["name"] == "default"
    record = [json.loads(line) for line in gw.audit_log.read_text().splitlines()][-1]
    assert info[0]["metric"]["sha256"] == record["policy"]["sha256"]  # the same digest as the audit log
    workers = prom.query("scrubgate_workers")
    assert workers and value(workers) == 2
    assert prom.query('scrubgate_errors_total{stage="audit"} > 0') == []
