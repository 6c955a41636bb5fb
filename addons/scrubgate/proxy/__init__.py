"""The proxy half: mitmproxy addons around the pure engine."""

from .. import logsafe
from .audit import Audit
from .gateway import Gateway
from .metrics import Metrics
from . import refused_bodies
from .policy_store import PolicyStore
from .resolve import Resolve
from .sanitisers import Sanitisers
from .tls_gate import TlsGate


def make_addons() -> list:
    """The addons in hook order: Resolve points flows at test upstreams; PolicyStore holds
    the policy and Sanitisers the workers (both configured before anything uses them);
    TlsGate decides on connections before decryption, Gateway on requests; then Audit
    and Metrics record."""
    logsafe.install()  # also under stock mitmdump/mitmweb, which never run our CLI
    store = PolicyStore()
    sanitisers = Sanitisers(store)

    def ready() -> tuple[bool, str]:
        if store.policy is None:
            return False, "no policy loaded"
        if not sanitisers.ready:
            return False, "sanitiser workers not running"
        return True, f"ready: policy {store.policy.name} {store.policy.version}"

    # Audit before Metrics: with `audit: required`, an upload whose record cannot be
    # written is blocked there, and the metrics must count the block.
    audit = Audit(store)
    gateway = Gateway(store, sanitisers)
    refused_bodies.install(gateway.body_over_limit)  # refused bodies are read, not held
    return [Resolve(), store, sanitisers, TlsGate(store, audit), gateway, audit, Metrics(ready)]


__all__ = ["Audit", "Gateway", "Metrics", "PolicyStore", "Resolve", "Sanitisers", "TlsGate", "make_addons"]
