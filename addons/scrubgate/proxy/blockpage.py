"""The answer a clinician sees when an upload is stopped.

Plain words: what happened, why, and where to send the file instead. Never
the file's name or any detail of its content.
"""

from __future__ import annotations

import html
import json

from ..policy import ApprovedChannel

_WHY = {
    "policy": "Your organisation's policy does not allow this kind of file to be sent to {service}.",
    "opaque_service": ("{service} encrypts pictures and files on your device before sending them, so "
                       "patient details cannot be removed from them on the way out. Sending files to "
                       "{service} from this network is therefore blocked."),
    "chunked_upload": ("{service} sends this file in several pieces, and a file that arrives in pieces "
                       "cannot be checked for patient details as a whole."),
    "corrupt": "The file looks damaged or incomplete, so it could not be checked for patient details.",
    "unsupported_format": "This type of file cannot be checked for patient details yet.",
    "too_large": "The file is too large to be checked for patient details.",
    "undecodable": "The upload was packaged in a way that could not be unpacked and checked.",
    "engine_error": "Something went wrong while checking the file for patient details.",
    "identifiable_face": ("The picture shows a person's face, and your organisation's policy does not "
                          "allow photographs of faces to be sent to {service}."),
    "ocr_unavailable": "The text-recognition part of the gateway is not working, so the picture could not be checked.",
    "timeout": "Checking the file for patient details took too long.",
    "worker_crash": "Something went wrong while checking the file for patient details.",
    "overloaded": "The gateway is too busy to check the file right now. Please try again in a minute.",
    "audit_unavailable": ("The gateway cannot record this upload in its audit log right now, and your "
                          "organisation's policy does not allow uploads that cannot be recorded."),
}


def explain(reason: str, service: str) -> str:
    return _WHY.get(reason, _WHY["engine_error"]).format(service=service)


def render(reason: str, service: str, channel: ApprovedChannel, accept: str,
           incident: str) -> tuple[bytes, str]:
    """Body and content type for a 403: HTML for browsers, JSON for API clients."""
    why = explain(reason, service)
    if "text/html" not in accept.lower():
        doc = {"error": "upload_blocked", "reason": reason, "service": service, "message": why,
               "approved_channel": {"name": channel.name, "url": channel.url}, "incident": incident}
        return json.dumps(doc).encode(), "application/json"
    e = html.escape
    contact = (f"<p>If you are not sure what to do, contact {e(channel.contact)} and quote "
               f"reference <code>{e(incident)}</code>.</p>" if channel.contact else
               f"<p>Reference: <code>{e(incident)}</code></p>")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Upload stopped to protect patient information</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:40rem;margin:3rem auto;padding:0 1rem;line-height:1.5;color:#1d1d1d}}
h1{{font-size:1.5rem}} .why{{background:#fff4e5;border-left:4px solid #e07b00;padding:.75rem 1rem}}
a.button{{display:inline-block;background:#005eb8;color:#fff;padding:.6rem 1rem;border-radius:4px;text-decoration:none}}
</style></head>
<body>
<h1>Your upload to {e(service)} was stopped</h1>
<p class="why">{e(why)}</p>
<p>Pictures, scans and screenshots from clinical systems can show a patient's name, date of birth,
NHS number or hospital number. Sending them through consumer messaging apps can break patient
confidentiality, so this network checks every upload before it leaves.</p>
<p>Please send clinical images through the approved channel instead:</p>
<p><a class="button" href="{e(channel.url)}">{e(channel.name)}</a></p>
{contact}
<p><small>Nothing was sent to {e(service)}. This decision was recorded without any patient details.</small></p>
</body></html>
"""
    return page.encode(), "text/html; charset=utf-8"
