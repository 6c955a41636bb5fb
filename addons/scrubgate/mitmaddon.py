"""Entry point for stock mitmproxy tools:

    mitmdump -s addons/scrubgate/mitmaddon.py --set scrubgate_policy=policies/default.yaml
    mitmweb  -s addons/scrubgate/mitmaddon.py
"""

from scrubgate.proxy import make_addons

addons = make_addons()
