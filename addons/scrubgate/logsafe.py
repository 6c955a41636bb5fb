"""One place that keeps library chatter from carrying identifier values.

pydicom, Pillow and friends warn and log about the file they are reading, and
they quote it: "Invalid value for VR UI: '1.2.826…'" names an original UID,
a TIFF tag dump names the patient. scrubgate's own messages are written never
to carry values; everybody else's are reduced to their kind (which library,
which category) before any handler sees them. Installed by the CLI, by the
mitmproxy addon entry point and by every worker process.
"""

from __future__ import annotations

import logging
import sys
import threading
import warnings

# Loggers whose messages are written by people who know the rule. mitmproxy's
# name hosts and connection errors, never request bodies.
TRUSTED_LOGGERS = ("scrubgate", "mitmproxy")
WITHHELD = "text withheld: it may quote file contents"

_installed = False
_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()


def _trusted(name: str) -> bool:
    return name.split(".", 1)[0] in TRUSTED_LOGGERS


def _library(module_path: str) -> str:
    """'/…/site-packages/pydicom/valuerep.py' -> 'pydicom.valuerep' (the path says which library)."""
    path = module_path.replace("\\", "/")
    if "/site-packages/" in path:
        path = path.rsplit("/site-packages/", 1)[1]
    return path.removesuffix(".py").replace("/", ".").lstrip(".") or "unknown"


def describe_warning(category: type[Warning], filename: str) -> str:
    return f"{category.__name__} from {_library(filename)} ({WITHHELD})"


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    key = (category.__name__, filename)
    with _lock:
        if key in _seen:  # one line per kind and place: values differ, the kind does not
            return
        _seen.add(key)
    stream = file or sys.stderr
    try:
        stream.write(f"scrubgate: library warning: {describe_warning(category, filename)}\n")
    except (OSError, ValueError):
        pass  # stderr closed: nothing to say it on


def install() -> None:
    """Route every warning and every foreign log record through the kind-only writers. Idempotent."""
    global _installed
    if _installed:
        return
    _installed = True
    warnings.showwarning = _show_warning
    make_record = logging.getLogRecordFactory()

    def kind_only_record(name, level, fn, lno, msg, args, exc_info, func=None, sinfo=None, **kw):
        if _trusted(name):
            return make_record(name, level, fn, lno, msg, args, exc_info, func, sinfo, **kw)
        # exc_info and the stack can quote values too (exception messages, locals in frames)
        return make_record(name, level, fn, lno, f"{name}: {logging.getLevelName(level).lower()} ({WITHHELD})",
                           (), None, func, None, **kw)

    logging.setLogRecordFactory(kind_only_record)
