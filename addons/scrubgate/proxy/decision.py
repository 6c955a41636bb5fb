"""The record of what the gateway did with one request.

The Gateway addon fills it in and leaves it in `flow.metadata["scrubgate"]`;
the Metrics and Audit addons read it. It holds kinds, counts and hashes only.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from ..inspect import PayloadOutcome


@dataclass
class Decision:
    service: str
    media: str
    upload: bool
    action: str = "allow"
    reason: str | None = None
    detail: str = ""
    payloads: list[PayloadOutcome] = field(default_factory=list)
    failed_open: bool = False
    error_stage: str | None = None  # set when something failed: decode, engine, timeout, worker ...
    job_seconds: float | None = None  # None: the body never went to a worker
    added_seconds: float = 0.0
    incident: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    recorded_metrics: bool = False
    recorded_audit: bool = False
