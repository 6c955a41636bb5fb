"""The service catalogue: which hosts and paths belong to which messenger.

Only hosts in the catalogue are ever decrypted (`allow_hosts_patterns()`
feeds mitmproxy's `allow_hosts`); everything else is tunnelled untouched.
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
            m = r.mapping(entry, where, {"name", "media", "hosts", "paths", "upload_paths",
                                         "chunked_uploads", "sources"}, {"name", "media", "hosts"})
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
            services.append(Service(
                id=sid,
                name=r.string(m, "name", where) or sid,
                media=r.choice(m, "media", where, MEDIA, "inspectable"),
                hosts=tuple(hosts),
                paths=tuple(path_regex(p) for p in r.string_list(m, "paths", where)),
                upload_paths=tuple(path_regex(p) for p in r.string_list(m, "upload_paths", where)),
                chunked=tuple(chunked),
                host_rx=re.compile("^(?:" + "|".join(host_regex(h) for h in hosts or ["$^"]) + ")$"),
            ))
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
