"""The service catalogue: which hosts and paths belong to which messenger.

Only hosts in the catalogue are ever decrypted (`allow_hosts_patterns()`
feeds mitmproxy's `allow_hosts`); everything else is tunnelled untouched.

Within a service, hosts come in three kinds, for decisions taken from the TLS
ClientHello alone (before anything is decrypted):
  * media hosts carry media uploads (mmg.whatsapp.net, files.slack.com);
  * chat hosts are documented to carry chat or API calls but no media upload,
    so they may be tunnelled for a client that cannot be intercepted;
  * every other host of the service is treated like a media host (fail closed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from .validate import PolicyError, Reader, load_yaml

MEDIA = ("opaque", "inspectable")
_ID = re.compile(r"^[a-z0-9_]{1,40}$")
_HOST_GLOB = re.compile(r"^(\*\.)?[a-z0-9*-]+(\.[a-z0-9*-]+)*$")


def host_regex(glob: str) -> str:
    """'*.example.com' -> any subdomain of example.com (not the bare domain)."""
    rx = ""
    if glob.startswith("*."):
        rx, glob = r"(?:[a-z0-9-]+\.)+", glob[2:]
    return rx + re.escape(glob).replace(r"\*", "[a-z0-9-]*")


def path_regex(glob: str) -> re.Pattern:
    return re.compile("^" + re.escape(glob).replace(r"\*", ".*") + "$")


@dataclass(frozen=True)
class ChunkedRule:
    path: re.Pattern
    query: Mapping[str, frozenset[str]]  # param -> accepted values (any one matches)
    headers: Mapping[str, frozenset[str]]  # lowercase header -> lowercase values

    def matches(self, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        if not self.path.match(path):
            return False
        if self.query and not any(query.get(k) in v for k, v in self.query.items()):
            return False
        if self.headers and not any((headers.get(k) or "").lower() in v for k, v in self.headers.items()):
            return False
        return True


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    media: str  # "opaque" or "inspectable"
    hosts: tuple[str, ...]
    paths: tuple[re.Pattern, ...] = ()
    upload_paths: tuple[re.Pattern, ...] = ()
    chunked: tuple[ChunkedRule, ...] = ()
    host_rx: re.Pattern = field(default=re.compile("$^"), compare=False)
    media_hosts: tuple[str, ...] = ()  # host globs, as written
    media_host_rx: re.Pattern = field(default=re.compile("$^"), compare=False)
    chat_hosts: frozenset[str] = frozenset()  # exact names, never globs

    def is_media_host(self, host: str) -> bool:
        return bool(self.media_host_rx.match(host))

    def claims(self, host: str, path: str) -> bool:
        if not self.host_rx.match(host):
            return False
        return not self.paths or any(p.match(path) for p in self.paths)

    def is_upload(self, path: str) -> bool:
        return any(p.match(path) for p in self.upload_paths)

    def is_chunked(self, path: str, query: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        return any(rule.matches(path, query, headers) for rule in self.chunked)


class ServiceCatalogue:
    def __init__(self, services: list[Service], source: str = "<memory>"):
        self.services = services
        self.source = source
        self.by_id = {s.id: s for s in services}
        self._host_cache: dict[str, tuple[Service, ...]] = {}

    _HOST_CACHE_SIZE = 4096

    def route(self, host: str, path: str) -> Service | None:
        """The service a request belongs to. Services that restrict `paths` win on shared hosts."""
        host = host.lower().rstrip(".")
        path = path.split("?", 1)[0]
        fallback = None
        for service in self._services_for(host):
            if service.paths:
                if any(p.match(path) for p in service.paths):
                    return service
            elif fallback is None:
                fallback = service
        return fallback

    def _services_for(self, host: str) -> tuple[Service, ...]:
        """The services whose host patterns match `host`, in catalogue order. Every
        request asks, and the answer depends on the host alone, so it is kept
        (bounded: a flood of distinct names only costs the regex walk again)."""
        cache = self._host_cache
        found = cache.get(host)
        if found is None:
            if len(cache) >= self._HOST_CACHE_SIZE:
                cache.clear()
            found = cache[host] = tuple(s for s in self.services if s.host_rx.match(host))
        return found

    def services_for_host(self, host: str) -> tuple[Service, ...]:
        """Every service whose hosts match `host` (a TLS server name): the ClientHello has
        no path, so a shared host belongs to all of them."""
        return self._services_for(host.lower().rstrip("."))

    def is_chat_host(self, host: str) -> bool:
        """A host that may be tunnelled for a client that cannot be intercepted: a chat
        host of every service that claims it, and a media host of none."""
        services = self.services_for_host(host)
        host = host.lower().rstrip(".")
        return bool(services) and all(host in s.chat_hosts and not s.is_media_host(host) for s in services)

    def allow_hosts_patterns(self) -> list[str]:
        """Regexes for mitmproxy's allow_hosts, which matches 'host:port' strings."""
        globs = sorted({h for s in self.services for h in s.hosts})
        return [rf"^{host_regex(g)}(?::\d+)?$" for g in globs]

    @classmethod
    def load(cls, path: Path) -> "ServiceCatalogue":
        return cls.parse(load_yaml(path), str(path))

    @classmethod
    def parse(cls, doc: object, source: str) -> "ServiceCatalogue":
        errors: list[str] = []
        r = Reader(errors)
        top = r.mapping(doc, "catalogue", {"version", "services"}, {"services"})
        raw_services = top.get("services") or {}
        if not isinstance(raw_services, dict) or not raw_services:
            errors.append("catalogue.services: must be a non-empty mapping of service id -> entry")
            raw_services = {}
        services = []
        for sid, entry in raw_services.items():
            where = f"services.{sid}"
            if not isinstance(sid, str) or not _ID.match(sid):
                errors.append(f"{where}: service id must match [a-z0-9_]+")
                continue
            m = r.mapping(entry, where, {"name", "media", "hosts", "media_hosts", "chat_hosts", "paths",
                                         "upload_paths", "chunked_uploads", "sources"}, {"name", "media", "hosts"})
            hosts = r.string_list(m, "hosts", where)
            for h in hosts:
                if not _HOST_GLOB.match(h):
                    errors.append(f"{where}.hosts: {h!r} is not a lowercase host glob (no scheme, no port)")
            if not hosts and "hosts" in m:
                errors.append(f"{where}.hosts: must list at least one host")
            chunked = []
            raw_chunked = m.get("chunked_uploads", [])
            if not isinstance(raw_chunked, list):
                errors.append(f"{where}.chunked_uploads: must be a list")
                raw_chunked = []
            for i, rule in enumerate(raw_chunked):
                cw = f"{where}.chunked_uploads[{i}]"
                rm = r.mapping(rule, cw, {"path", "query", "headers"}, {"path"})
                query = _value_sets(rm.get("query", {}), f"{cw}.query", errors, lower=False)
                headers = _value_sets(rm.get("headers", {}), f"{cw}.headers", errors, lower=True)
                chunked.append(ChunkedRule(path_regex(r.string(rm, "path", cw) or "/*"), query, headers))
            for key in ("paths", "upload_paths"):
                for p in r.string_list(m, key, where):
                    if not p.startswith("/"):
                        errors.append(f"{where}.{key}: {p!r} must start with '/'")
            r.string_list(m, "sources", where)
            host_rx = re.compile("^(?:" + "|".join(host_regex(h) for h in hosts or ["$^"]) + ")$")
            media_hosts = r.string_list(m, "media_hosts", where)
            chat_hosts = r.string_list(m, "chat_hosts", where)
            for key, names in (("media_hosts", media_hosts), ("chat_hosts", chat_hosts)):
                for h in names:
                    sample = "a." + h[2:] if h.startswith("*.") else h.replace("*", "a")
                    if not _HOST_GLOB.match(h) or not host_rx.match(sample):
                        errors.append(f"{where}.{key}: {h!r} is not one of the service's hosts")
            media_rx = re.compile("^(?:" + "|".join(host_regex(h) for h in media_hosts or ["$^"]) + ")$")
            for h in chat_hosts:
                if "*" in h:
                    errors.append(f"{where}.chat_hosts: {h!r}: chat hosts are exact names (a glob could "
                                  "cover a media host that is tunnelled)")
                elif media_rx.match(h):
                    errors.append(f"{where}.chat_hosts: {h!r} is also a media host")
            services.append(Service(
                id=sid,
                name=r.string(m, "name", where) or sid,
                media=r.choice(m, "media", where, MEDIA, "inspectable"),
                hosts=tuple(hosts),
                paths=tuple(path_regex(p) for p in r.string_list(m, "paths", where)),
                upload_paths=tuple(path_regex(p) for p in r.string_list(m, "upload_paths", where)),
                chunked=tuple(chunked),
                host_rx=host_rx,
                media_hosts=tuple(media_hosts),
                media_host_rx=media_rx,
                chat_hosts=frozenset(h for h in chat_hosts if "*" not in h),
            ))
        for s in services:  # a chat host of one service must not be another's media host
            for h in sorted(s.chat_hosts):
                for other in services:
                    if other is not s and other.is_media_host(h):
                        errors.append(f"services.{s.id}.chat_hosts: {h!r} is a media host of {other.id}")
        if errors:
            raise PolicyError(source, errors)
        return cls(services, source)


def _value_sets(raw: object, where: str, errors: list[str], lower: bool) -> dict[str, frozenset[str]]:
    if not isinstance(raw, dict):
        errors.append(f"{where}: must be a mapping of name -> list of values")
        return {}
    out = {}
    for k, values in raw.items():
        if not isinstance(values, list):
            values = [values]
        vals = [str(v) for v in values]
        out[str(k).lower() if lower else str(k)] = frozenset(v.lower() if lower else v for v in vals)
    return out
