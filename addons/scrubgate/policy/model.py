"""Policies: which action applies to which upload.

A policy is an ordered list of rules over (service, media category, content
kind); the first rule that matches decides. It also carries limits, the
fail-open/closed switch and the approved channel named on block pages.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ..engine.dicom.options import LONGITUDINAL, DicomOptions
from ..engine.limits import FACES_MODES, TEXT_MODES, EngineLimits, FacesMode, TextMode
from ..engine.verdict import CONTENT_KINDS
from .catalogue import MEDIA, Service, ServiceCatalogue
from .validate import PolicyError, Reader, load_yaml

ACTIONS = ("allow", "sanitize", "block", "monitor")
# When payloads in one request disagree, the strictest wins.
SEVERITY = {"allow": 0, "monitor": 1, "sanitize": 2, "block": 3}


@dataclass(frozen=True)
class Rule:
    services: frozenset[str] | None  # None: any service
    media: str | None  # None: any media category
    content: frozenset[str] | None  # None: any content kind
    action: str

    def matches(self, service: Service, content: str) -> bool:
        return ((self.services is None or service.id in self.services)
                and (self.media is None or self.media == service.media)
                and (self.content is None or content in self.content))


@dataclass(frozen=True)
class Limits:
    """The policy's `limits:` block: the request's bounds, and the engine's own record
    (written flat in the YAML: max_pixels, max_archive_*)."""
    max_body_bytes: int = 50 * 1024 * 1024
    max_payloads: int = 32
    job_timeout_seconds: float = 30.0
    max_queue: int = 64
    # Request bodies held for inspection at once, summed over every upload (the body
    # crosses to a worker as raw bytes, so the process holds about one copy of each).
    max_inflight_bytes: int = 256 * 1024 * 1024
    engine: EngineLimits = EngineLimits()


@dataclass(frozen=True)
class TlsPolicy:
    """The policy's `tls:` block: what is decided from the TLS ClientHello (or an explicit
    proxy's CONNECT), before anything is decrypted. Safety never depends on memory: a
    media host is refused or intercepted on every replica alike; only `tunnel_chat`
    uses what this replica has seen (a client that failed our handshake)."""
    blocked_media_hosts: str = "refuse"  # refuse: by SNI, without decrypting; intercept: decrypt, show the page
    untrusted_clients: str = "block"  # tunnel_chat: chat hosts tunnelled for a client that failed; block: never
    untrusted_memory_seconds: int = 3600  # how long a failed handshake is remembered per client and service


@dataclass(frozen=True)
class ApprovedChannel:
    name: str
    url: str
    contact: str = ""


@dataclass(frozen=True)
class Plan:
    """What the worker needs to know for one request: picklable, no catalogue."""
    actions: dict[str, str]  # content kind -> action
    fail_open: bool
    limits: Limits
    text: TextMode
    faces: FacesMode = "blur"
    dicom: DicomOptions = field(default_factory=DicomOptions)  # with the deployment key filled in


@dataclass(frozen=True)
class Policy:
    name: str
    version: str
    description: str
    fail: str  # "closed" or "open"
    text: TextMode  # burned-in text to redact
    faces: FacesMode  # faces in photographs
    dicom: DicomOptions  # the Annex E options (the key is not policy: it comes from the deployment)
    chunked_uploads: str  # "block" or "allow"
    audit: str  # "best_effort" (record what can be) or "required" (no upload without its record)
    limits: Limits
    tls: TlsPolicy
    approved_channel: ApprovedChannel
    rules: tuple[Rule, ...]
    default_action: str
    catalogue: ServiceCatalogue
    source: str
    sha256: str

    @property
    def fail_open(self) -> bool:
        return self.fail == "open"

    def action_for(self, service: Service, content: str) -> str:
        for rule in self.rules:
            if rule.matches(service, content):
                return rule.action
        return self.default_action

    def blocks_all_uploads(self, service: Service) -> bool:
        return all(self.action_for(service, c) == "block" for c in CONTENT_KINDS)

    def refusal_at_hello(self, host: str) -> Service | None:
        """The service whose media host `host` is, when the policy blocks every upload to
        every service that claims the host, and refuses such hosts by SNI; else None."""
        if self.tls.blocked_media_hosts != "refuse":
            return None
        services = self.catalogue.services_for_host(host)
        if not services or not all(self.blocks_all_uploads(s) for s in services):
            return None
        return next((s for s in services if s.is_media_host(host.lower().rstrip("."))), None)

    def plan_for(self, service: Service, secret: bytes = b"") -> Plan:
        return Plan({c: self.action_for(service, c) for c in CONTENT_KINDS},
                    self.fail_open, self.limits, self.text, self.faces,
                    replace(self.dicom, secret=secret))

    def decision_table(self) -> list[tuple[str, str, dict[str, str]]]:
        return [(s.id, s.media, {c: self.action_for(s, c) for c in CONTENT_KINDS})
                for s in self.catalogue.services]

    @classmethod
    def load(cls, path: str | Path, catalogue_path: str | Path | None = None) -> "Policy":
        path = Path(path)
        doc = load_yaml(path)
        errors: list[str] = []
        r = Reader(errors)
        m = r.mapping(doc, "policy", {
            "name", "version", "description", "catalogue", "fail", "text", "faces", "dicom", "chunked_uploads", "audit",
            "limits", "tls", "approved_channel", "rules", "default_action"}, {"name", "rules", "approved_channel"})
        cat_ref = catalogue_path or path.parent / (r.string(m, "catalogue", "policy") or "services.yaml")
        try:
            catalogue = ServiceCatalogue.load(Path(cat_ref))
        except PolicyError as e:
            errors.extend(f"catalogue ({e.source}): {msg}" for msg in e.errors)
            catalogue = ServiceCatalogue([], str(cat_ref))

        lm = r.mapping(m.get("limits", {}), "limits", {
            "max_body_bytes", "max_payloads", "max_pixels", "job_timeout_seconds", "max_queue", "max_inflight_bytes",
            "max_archive_members", "max_archive_bytes", "max_archive_depth"})
        d, e = Limits(), EngineLimits()
        limits = Limits(
            max_body_bytes=int(r.number(lm, "max_body_bytes", "limits", d.max_body_bytes, 1024, 2**31)),
            max_payloads=int(r.number(lm, "max_payloads", "limits", d.max_payloads, 1, 256)),
            job_timeout_seconds=float(r.number(lm, "job_timeout_seconds", "limits", d.job_timeout_seconds,
                                               0.1, 600, integer=False)),
            max_queue=int(r.number(lm, "max_queue", "limits", d.max_queue, 1, 10000)),
            max_inflight_bytes=int(r.number(lm, "max_inflight_bytes", "limits", d.max_inflight_bytes,
                                            1024, 2**40)),
            engine=replace(
                e,
                max_pixels=int(r.number(lm, "max_pixels", "limits", e.max_pixels, 1, 2**31)),
                max_archive_members=int(r.number(lm, "max_archive_members", "limits", e.max_archive_members,
                                                 1, 1_000_000)),
                max_archive_bytes=int(r.number(lm, "max_archive_bytes", "limits", e.max_archive_bytes,
                                               1024, 2**40)),
                max_archive_depth=int(r.number(lm, "max_archive_depth", "limits", e.max_archive_depth, 0, 8))),
        )
        if limits.max_inflight_bytes < limits.max_body_bytes:
            errors.append("limits.max_inflight_bytes: must be at least limits.max_body_bytes "
                          "(one upload of the largest size must fit)")
        dicom = _dicom_options(r, m.get("dicom", {}))
        tm = r.mapping(m.get("tls", {}), "tls", {"blocked_media_hosts", "untrusted_clients",
                                                "untrusted_memory_seconds"})
        t = TlsPolicy()
        tls = TlsPolicy(
            blocked_media_hosts=r.choice(tm, "blocked_media_hosts", "tls", ("refuse", "intercept"),
                                         t.blocked_media_hosts),
            untrusted_clients=r.choice(tm, "untrusted_clients", "tls", ("tunnel_chat", "block"),
                                       t.untrusted_clients),
            untrusted_memory_seconds=int(r.number(tm, "untrusted_memory_seconds", "tls",
                                                  t.untrusted_memory_seconds, 1, 30 * 86400)))
        am = r.mapping(m.get("approved_channel", {}), "approved_channel", {"name", "url", "contact"},
                       {"name", "url"})
        channel = ApprovedChannel(r.string(am, "name", "approved_channel") or "",
                                  r.string(am, "url", "approved_channel") or "",
                                  r.string(am, "contact", "approved_channel", "") or "")
        if channel.url and not channel.url.startswith(("https://", "http://", "mailto:")):
            errors.append("approved_channel.url: must start with https://, http:// or mailto:")

        rules = []
        raw_rules = m.get("rules", [])
        if not isinstance(raw_rules, list):
            errors.append("rules: must be a list")
            raw_rules = []
        for i, raw in enumerate(raw_rules):
            where = f"rules[{i}]"
            rm = r.mapping(raw, where, {"services", "media", "content", "action", "comment"}, {"action"})
            services = r.string_list(rm, "services", where) if "services" in rm else None
            for sid in services or []:
                if sid not in catalogue.by_id and catalogue.services:
                    errors.append(f"{where}.services: unknown service {sid!r} (not in {catalogue.source})")
            content = r.string_list(rm, "content", where) if "content" in rm else None
            for c in content or []:
                if c not in CONTENT_KINDS:
                    errors.append(f"{where}.content: unknown content kind {c!r} "
                                  f"(one of {', '.join(CONTENT_KINDS)})")
            media = rm.get("media")
            if media is not None and media not in MEDIA:
                errors.append(f"{where}.media: must be one of {', '.join(MEDIA)} (got {media!r})")
            rules.append(Rule(frozenset(services) if services is not None else None, media,
                              frozenset(content) if content is not None else None,
                              r.choice(rm, "action", where, ACTIONS, "block")))

        policy = cls(
            name=r.string(m, "name", "policy") or "",
            version=r.string(m, "version", "policy", "0") or "0",
            description=r.string(m, "description", "policy", "") or "",
            fail=r.choice(m, "fail", "policy", ("closed", "open"), "closed"),
            text=r.choice(m, "text", "policy", TEXT_MODES, "identifiers"),
            faces=r.choice(m, "faces", "policy", FACES_MODES, "blur"),
            dicom=dicom,
            chunked_uploads=r.choice(m, "chunked_uploads", "policy", ("block", "allow"), "block"),
            audit=r.choice(m, "audit", "policy", ("best_effort", "required"), "best_effort"),
            limits=limits,
            tls=tls,
            approved_channel=channel,
            rules=tuple(rules),
            default_action=r.choice(m, "default_action", "policy", ACTIONS, "block"),
            catalogue=catalogue,
            source=str(path),
            sha256=_digest(path, Path(cat_ref)),
        )
        if errors:
            raise PolicyError(str(path), errors)
        return policy


def _dicom_options(r: Reader, raw) -> DicomOptions:
    """The policy's `dicom:` block: one key per PS3.15 Annex E option."""
    names = {f.name for f in fields(DicomOptions)} - {"secret"}
    dm = r.mapping(raw, "dicom", names)
    d = DicomOptions()
    values = {}
    for name in sorted(names - {"retain_longitudinal"}):
        values[name] = r.flag(dm, name, "dicom", getattr(d, name))
    if dm.get("retain_longitudinal") is False:  # YAML 1.1 reads a bare `off` as false
        dm = {**dm, "retain_longitudinal": "off"}
    values["retain_longitudinal"] = r.choice(dm, "retain_longitudinal", "dicom", LONGITUDINAL,
                                             d.retain_longitudinal)
    return DicomOptions(**values)


def _digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        try:
            h.update(p.read_bytes())
        except OSError:
            pass
    return h.hexdigest()
