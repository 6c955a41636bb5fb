"""Print the catalogue's hosts as a Squid `ssl::server_name` list: the hosts to bump.

    python3 deploy/icap/make_hosts.py policies/services.yaml > /etc/squid/scrubgate-hosts.txt

"*.example.com" becomes ".example.com", which Squid matches for example.com and every
subdomain; the bare name is then left out, as Squid refuses a list holding both.
Needs PyYAML (it comes with scrubgate).
"""

from __future__ import annotations

import sys

import yaml


def squid_names(catalogue: dict) -> list[str]:
    globs = {h for s in catalogue["services"].values() for h in s["hosts"]}
    dotted = {g[1:] for g in globs if g.startswith("*.")}
    names = set(dotted)
    for g in globs:
        if not g.startswith("*.") and f".{g}" not in dotted and not any(g.endswith(d) for d in dotted):
            names.add(g)
    return sorted(names)


if __name__ == "__main__":
    with open(sys.argv[1] if len(sys.argv) > 1 else "policies/services.yaml") as f:
        print("\n".join(squid_names(yaml.safe_load(f))))
