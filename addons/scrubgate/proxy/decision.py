"""The record of what the gateway did with one request.

The Gateway addon fills it in and keeps it with the flow (`state_of(flow)`);
the Metrics and Audit addons read it. It holds kinds, counts and hashes only.

The state lives beside the flow, not in `flow.metadata`: mitmproxy deep-copies
and serialises metadata when it saves or duplicates a flow, and our objects
are neither cheap to copy nor serialisable. Only a plain summary (action,
reason, incident, service) goes into `flow.metadata["scrubgate"]`, where
mitmweb and saved flows show it.
"""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass, field
from typing import Any

from ..job import PayloadOutcome


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


@dataclass
class FlowState:
    """What the addons work out once per flow."""
    host: str | None = None
    route: tuple[Any, Any] | None = None  # (policy, service): valid while that policy is in force
    decision: Decision | None = None
    reserved: int = 0  # body bytes this flow holds of the gateway's in-flight budget


_STATES: "weakref.WeakKeyDictionary[Any, FlowState]" = weakref.WeakKeyDictionary()


def state_of(flow) -> FlowState:
    state = _STATES.get(flow)
    if state is None:
        state = _STATES[flow] = FlowState()
    return state


def decision_of(flow) -> Decision | None:
    state = _STATES.get(flow)
    return state.decision if state else None


def publish(flow, decision: Decision) -> None:
    """Keep the decision with the flow, and a plain, serialisable summary in its metadata."""
    state_of(flow).decision = decision
    flow.metadata["scrubgate"] = {"service": decision.service, "action": decision.action,
                                  "reason": decision.reason, "incident": decision.incident}
