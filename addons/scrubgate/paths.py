"""Where the shipped policies live, in a source checkout, a wheel or a container."""

from __future__ import annotations

import os
from pathlib import Path


def policy_dir() -> Path:
    env = os.environ.get("SCRUBGATE_POLICY_DIR")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    for candidate in (here / "policies", here.parent.parent / "policies"):
        if (candidate / "default.yaml").is_file():
            return candidate
    return here.parent.parent / "policies"


def default_policy() -> Path:
    return policy_dir() / "default.yaml"
