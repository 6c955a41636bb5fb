"""monitor.yaml: forward everything unchanged, but record what would have happened."""

import pytest

from conftest import ROOT, start_gateway, stop_gateway
from metadata_samples import jpeg_with_metadata


@pytest.fixture(scope="module")
def monitor_gateway(tmp_path_factory, upstream):
    gw = start_gateway(tmp_path_factory.mktemp("monitor"), upstream, policy=ROOT / "policies/monitor.yaml")
    yield gw
    stop_gateway(gw)


def test_monitor_forwards_unchanged_and_counts(monitor_gateway, upstream, tmp_path):
    original = jpeg_with_metadata(tmp_path)
    with monitor_gateway.client() as c:
        r = c.post("https://api.imgur.com/3/image?monitor=1", content=original,
                   headers={"Content-Type": "image/jpeg"})
        truncated = c.post("https://api.imgur.com/3/image?monitor=2", content=original[:1000])
    assert r.status_code == 200 and truncated.status_code == 200
    got = {q.path: q.body for q in upstream.received("/3/image?monitor")}
    assert got["/3/image?monitor=1"] == original
    assert got["/3/image?monitor=2"] == original[:1000]
    metrics = monitor_gateway.metrics()
    assert 'scrubgate_flows_total{action="monitor",service="imgur"} 2.0' in metrics
    assert 'scrubgate_identifiers_total{kind="location",source="exif"} 1.0' in metrics
    assert "scrubgate_blocks_total{" not in metrics
