"""Headless Chromium behind a real `scrubgate run`: what a clinician's browser shows
when an upload is stopped.

- A form post is a navigation (Accept: text/html): the browser shows the block page.
- A web app uploads with fetch/XHR from another origin (web.whatsapp.com to
  mmg.whatsapp.net). Its script can read the 403, the reason and the approved
  channel only because the block response carries CORS headers; without them
  the browser hides every detail and the script sees "Failed to fetch".

A block page needs the connection to be decrypted, so these run with the policy's
`tls.blocked_media_hosts: intercept` (for browsers that trust the CA). With the
shipped `refuse`, mmg.whatsapp.net is refused at the TLS handshake, as pinned apps
need, and the browser's script sees only a network error.
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

FETCH_PAGE = """<!doctype html><html><body><div id="out">pending</div><script>
const form = new FormData();
form.append("file", new Blob([new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3])], {type: "image/jpeg"}), "scan.jpg");
fetch("https://mmg.whatsapp.net/mms/image/from-browser", {method: "POST", body: form, credentials: "include"})
  .then(async r => { document.getElementById("out").textContent =
      "status=" + r.status + " reason=" + r.headers.get("X-Scrubgate-Reason") + " body=" + await r.text(); })
  .catch(e => { document.getElementById("out").textContent = "error=" + e; });
</script></body></html>"""

FORM_PAGE = """<!doctype html><html><body>
<form method="post" enctype="multipart/form-data" action="https://mmg.whatsapp.net/mms/image/form-post">
<input type="hidden" name="caption" value="scan"></form>
<script>document.forms[0].submit()</script></body></html>"""


@pytest.fixture(scope="module")
def intercepting(tmp_path_factory, upstream):
    from conftest import gateway_with_policy_edits, stop_gateway
    gw = gateway_with_policy_edits(tmp_path_factory.mktemp("intercept"), upstream,
                                   {"blocked_media_hosts: refuse": "blocked_media_hosts: intercept"})
    yield gw
    stop_gateway(gw)


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("chromium is missing: run `make test` (it installs the chromium package)")
    return path


def _spki_sha256(pem_path) -> str:
    """The gateway CA's key hash, which Chromium is told to accept (as if the CA were installed)."""
    cert = x509.load_pem_x509_certificate(pem_path.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def browse(chromium: str, gateway, url: str, tmp_path) -> str:
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", f"--proxy-server={gateway.proxy}",
           f"--ignore-certificate-errors-spki-list={_spki_sha256(gateway.confdir / 'mitmproxy-ca-cert.pem')}",
           "--virtual-time-budget=20000", "--dump-dom", url]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_a_web_apps_upload_script_can_read_why_it_was_blocked(chromium, intercepting, upstream, tmp_path):
    upstream.pages["/browser/fetch"] = FETCH_PAGE
    dom = browse(chromium, intercepting, "https://slack.com/browser/fetch", tmp_path)
    assert "status=403" in dom and "reason=opaque_service" in dom, dom
    assert '"approved_channel"' in dom and "NHSmail" in dom
    assert not upstream.received("/mms/image/from-browser")


def test_a_form_post_shows_the_block_page(chromium, intercepting, upstream, tmp_path):
    upstream.pages["/browser/form"] = FORM_PAGE
    dom = browse(chromium, intercepting, "https://slack.com/browser/form", tmp_path)
    assert "Your upload to WhatsApp was stopped" in dom, dom[-2000:]
    assert "NHSmail" in dom and "Nothing was sent to WhatsApp" in dom
    assert not upstream.received("/mms/image/form-post")


def test_with_the_shipped_policy_the_media_host_is_refused_before_decryption(chromium, gateway, upstream,
                                                                           tmp_path):
    """The shipped default refuses mmg.whatsapp.net by name: the script sees a network
    error, not a page, and nothing reaches the host."""
    upstream.pages["/browser/fetch-refused"] = FETCH_PAGE.replace("from-browser", "refused-browser")
    dom = browse(chromium, gateway, "https://slack.com/browser/fetch-refused", tmp_path)
    assert '<div id="out">error=TypeError' in dom, dom[-2000:]  # a network error, no response
    assert not upstream.received("/mms/image/refused-browser")


def test_the_readme_documents_the_block_response():
    """Every key of the JSON body and every header an integrator can rely on is in the README."""
    import json
    from pathlib import Path

    from scrubgate.policy import ApprovedChannel
    from scrubgate.proxy import blockpage
    body, ctype = blockpage.render("policy", "Slack", ApprovedChannel("NHSmail", "https://portal.nhs.net/", ""),
                                   "application/json", "abc123")
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme[readme.index("### What a blocked client sees"):readme.index("## Commands")]
    assert ctype == "application/json"
    for key in json.loads(body):
        assert f'"{key}"' in section, key
    for header in ("X-Scrubgate-Reason", "X-Scrubgate-Incident", "Access-Control-Allow-Origin", "text/html"):
        assert header in section, header
