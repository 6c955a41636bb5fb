"""Policies and the catalogue: shipped files are valid, errors name the field."""

from pathlib import Path

import pytest

from scrubgate.policy import Policy, PolicyError, ServiceCatalogue

POLICIES = Path(__file__).resolve().parent.parent / "policies"


@pytest.mark.parametrize("name", ["default", "strict", "monitor"])
def test_shipped_policies_are_valid(name):
    p = Policy.load(POLICIES / f"{name}.yaml")
    assert p.name == name and p.approved_channel.url


def test_catalogue_covers_the_required_services():
    cat = ServiceCatalogue.load(POLICIES / "services.yaml")
    required = {"whatsapp", "signal", "telegram", "snapchat", "messenger", "messenger_e2ee", "instagram",
                "x", "discord", "slack", "google_drive", "teams_consumer", "viber", "wechat", "line",
                "imgur", "dropbox", "wetransfer"}
    assert required <= set(cat.by_id)
    assert cat.by_id["whatsapp"].media == "opaque" and cat.by_id["slack"].media == "inspectable"
    text = (POLICIES / "services.yaml").read_text()
    assert text.count("https://") >= len(required)  # every entry cites sources


def test_routing_and_shared_hosts():
    cat = ServiceCatalogue.load(POLICIES / "services.yaml")
    assert cat.route("files.slack.com", "/upload/v1/abc").id == "slack"
    assert cat.route("SLACK.COM", "/api/chat.postMessage").id == "slack"
    assert cat.route("mmg.whatsapp.net", "/mms/image/x").id == "whatsapp"
    assert cat.route("rupload.facebook.com", "/messenger_eb/123").id == "messenger_e2ee"
    assert cat.route("www.bank.example", "/") is None
    assert cat.route("notslack.com", "/") is None


def test_routing_is_the_same_with_the_host_cache_warm_or_full():
    """route() keeps the services matching each host; the answers must equal a plain walk."""
    cat = ServiceCatalogue.load(POLICIES / "services.yaml")

    def walk(host, path):
        host = host.lower().rstrip(".")
        hits = [s for s in cat.services if s.claims(host, path.split("?", 1)[0])]
        return next((s for s in hits if s.paths), hits[0] if hits else None)

    cases = [(h, p) for h in ("rupload.facebook.com", "www.facebook.com", "files.slack.com", "slack.com.",
                              "mmg.whatsapp.net", "bank.example.org", "upload.twitter.com")
             for p in ("/", "/messenger_eb/123", "/api/chat.postMessage?x=1", "/upload/v1/abc")]
    for _ in range(2):  # cold, then from the cache
        for host, path in cases:
            assert cat.route(host, path) is walk(host, path), (host, path)
    cat._host_cache.clear()
    cat._HOST_CACHE_SIZE = 3  # a full cache is emptied, never wrong
    for host, path in cases:
        assert cat.route(host, path) is walk(host, path), (host, path)
    assert len(cat._host_cache) <= 3


def test_allow_hosts_patterns_match_host_port_strings():
    import re
    cat = ServiceCatalogue.load(POLICIES / "services.yaml")
    pats = [re.compile(p, re.I) for p in cat.allow_hosts_patterns()]
    hit = lambda h: any(p.search(h) for p in pats)  # noqa: E731
    assert hit("files.slack.com:443") and hit("mmg.whatsapp.net:443")
    assert not hit("evilslack.com:443") and not hit("127.0.0.1:443") and not hit("bank.example.org:443")


def test_default_decisions():
    p = Policy.load(POLICIES / "default.yaml")
    table = {sid: acts for sid, _, acts in p.decision_table()}
    assert table["whatsapp"]["image"] == "block"
    assert table["slack"]["image"] == "sanitize" and table["slack"]["other"] == "block"


def test_errors_name_the_field(tmp_path):
    (tmp_path / "services.yaml").write_text((POLICIES / "services.yaml").read_text())
    bad = tmp_path / "bad.yaml"
    bad.write_text("""
name: bad
approved_channel: {name: x, url: ftp://nope}
fail: sometimes
faces: pixelate
text: everything
dicom: {retain_uids: "yes", retain_longitudinal: sometimes, clean_everything: true}
limits: {max_body_bytes: -5, job_timout_seconds: 3, max_archive_depth: 99}
rules:
  - content: [image, pdf]
    action: scrub
  - services: [myspace]
    action: block
""")
    with pytest.raises(PolicyError) as e:
        Policy.load(bad)
    msg = "\n".join(e.value.errors)
    for expected in ("approved_channel.url", "policy.fail", "policy.faces", "policy.text",
                     "limits.max_body_bytes", "limits.job_timout_seconds", "limits.max_archive_depth",
                     "dicom.retain_uids", "dicom.retain_longitudinal", "dicom.clean_everything",
                     "rules[0].content", "rules[0].action", "rules[1].services"):
        assert expected in msg, msg


def test_inflight_budget_must_hold_one_largest_upload(tmp_path):
    policy = tmp_path / "p.yaml"
    (tmp_path / "services.yaml").write_text((POLICIES / "services.yaml").read_text())
    text = (POLICIES / "default.yaml").read_text()
    policy.write_text(text.replace("max_inflight_bytes: 268435456", "max_inflight_bytes: 1048576"))
    with pytest.raises(PolicyError) as e:
        Policy.load(policy)
    assert any(m.startswith("limits.max_inflight_bytes: must be at least") for m in e.value.errors)
    policy.write_text(text.replace("max_inflight_bytes: 268435456", "max_inflight_bytes: 52428800"))
    assert Policy.load(policy).limits.max_inflight_bytes == 52428800


def test_yaml_syntax_error_gives_a_line(tmp_path):
    bad = tmp_path / "p.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(PolicyError) as e:
        Policy.load(bad)
    assert "line" in e.value.errors[0]


def test_shipped_pac_file_matches_the_catalogue():
    import subprocess
    import sys
    root = POLICIES.parent
    r = subprocess.run([sys.executable, "deploy/pac/make_pac.py", "--proxy", "scrubgate.example.internal:8080",
                        "--check"], cwd=root, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_pixel_choices_reach_the_worker_plan():
    strict = Policy.load(POLICIES / "strict.yaml")
    plan = strict.plan_for(strict.catalogue.by_id["slack"])
    assert (plan.text, plan.faces) == ("all", "block")
    default = Policy.load(POLICIES / "default.yaml")
    plan = default.plan_for(default.catalogue.by_id["slack"])
    assert (plan.text, plan.faces) == ("identifiers", "blur")


def test_dicom_options_and_the_deployment_key_reach_the_worker_plan(tmp_path):
    default = Policy.load(POLICIES / "default.yaml")
    plan = default.plan_for(default.catalogue.by_id["slack"], b"k" * 32)
    assert plan.dicom.secret == b"k" * 32 and plan.dicom.retain_longitudinal == "modified"
    assert plan.dicom.clean_pixel_data and not plan.dicom.retain_uids
    strict = Policy.load(POLICIES / "strict.yaml")
    assert strict.dicom.retain_longitudinal == "off"
    # YAML 1.1 reads a bare `off` as false; that still means "off".
    text = (POLICIES / "default.yaml").read_text().replace("retain_longitudinal: modified", "retain_longitudinal: off")
    (tmp_path / "services.yaml").write_text((POLICIES / "services.yaml").read_text())
    (tmp_path / "p.yaml").write_text(text)
    assert Policy.load(tmp_path / "p.yaml").dicom.retain_longitudinal == "off"
