"""Bodies the gateway has refused are read and dropped, never held.

mitmproxy answers a request only after its whole body has arrived, and keeps every byte of
it until then (`HttpStream.state_consume_request_body` appends to `request_body_buf`), even
when an addon has already answered the request at its headers. Refusing 500 large uploads
at once therefore held all 500 in memory (4.6 GB in bench/results/load-2026-12-03.md).
Closing those connections unread was tried and reverted: some clients then wait forever.

So this module wraps that one method of mitmproxy's HTTP layer:

* a flow refused at its headers (`mark_refused`) has its body bytes dropped as they
  arrive; its answer still goes out when the body has ended, exactly as before;
* a flow whose body has no declared length (chunked, HTTP/2) and grows past the limit set
  with `limit_body` is handed to a callback (the Gateway refuses it with `too_large`, or
  under `fail: open` lets it be read on) and is then treated as refused: the bytes
  already held are released, the rest are dropped.

Installed once per process (`install`), by `make_addons`. mitmproxy is pinned in
requirements.lock; tests/test_limits.py fails if the wrap stops taking effect.
"""

from __future__ import annotations

from collections.abc import Callable

from mitmproxy import http
from mitmproxy.proxy.layers.http import HttpStream, RequestData

_REFUSED = "scrubgate_refused_before_body"
_LIMIT = "scrubgate_body_limit"
_over_limit: Callable[[http.HTTPFlow], bool] = lambda flow: False  # noqa: E731


def mark_refused(flow: http.HTTPFlow) -> None:
    """The flow is answered already: drop its body as it comes in."""
    flow.metadata[_REFUSED] = True


def limit_body(flow: http.HTTPFlow, limit: int) -> None:
    """Call the over-limit callback once the body held passes `limit` bytes."""
    flow.metadata[_LIMIT] = limit


def install(on_over_limit: Callable[[http.HTTPFlow], bool]) -> None:
    """Wrap mitmproxy's request-body reader (once). `on_over_limit(flow)` answers a flow
    whose body passed its limit and returns True if it refused it."""
    global _over_limit
    _over_limit = on_over_limit
    original = HttpStream.state_consume_request_body
    if getattr(original, "_scrubgate", False):
        return

    def state_consume_request_body(self, event):
        if isinstance(event, RequestData):
            metadata = self.flow.metadata
            if metadata.get(_REFUSED):
                return  # answered already: read and dropped
            limit = metadata.get(_LIMIT)
            if limit is not None and len(self.request_body_buf) + len(event.data) > limit:
                del metadata[_LIMIT]  # asked once; failing open, the body is read on
                if _over_limit(self.flow):
                    metadata[_REFUSED] = True
                    self.request_body_buf.clear()
                    return
        yield from original(self, event)

    state_consume_request_body._scrubgate = True  # type: ignore[attr-defined]
    HttpStream.state_consume_request_body = state_consume_request_body  # type: ignore[method-assign]
