"""The proxy half: mitmproxy addons around the pure engine."""

from .. import logsafe
from .audit import Audit
from .gateway import Gateway
from .metrics import Metrics
from .resolve import Resolve


def make_addons() -> list:
    """The addons in hook order: Resolve and Gateway decide, then Metrics and Audit record."""
    logsafe.install()  # also under stock mitmdump/mitmweb, which never run our CLI
    gateway = Gateway()
    return [Resolve(), gateway, Metrics(gateway.ready), Audit(gateway)]


__all__ = ["Audit", "Gateway", "Metrics", "Resolve", "make_addons"]
