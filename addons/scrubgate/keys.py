"""The deployment secret: the key behind DICOM UID remapping and date shifting.

New UIDs are HMAC(secret, old UID), so every replica that shares the secret
gives the files of one study the same new UIDs, and a study sent in two
uploads still lines up. Whoever holds the secret can test a guessed original
UID, so it lives in a file readable by the gateway only (mode 0600), never in
the policy.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_BYTES = 32
MIN_SECRET_BYTES = 16
ENV = "SCRUBGATE_SECRET_FILE"


class SecretError(ValueError):
    pass


def load_secret(path: str | Path) -> bytes:
    """Read a secret file: hex (as `secret_file` writes) or at least 16 raw bytes."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise SecretError(f"cannot read the secret file {path}: {e.strerror}") from None
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < MIN_SECRET_BYTES:
        raise SecretError(f"the secret file {path} holds {len(key)} bytes; at least "
                          f"{MIN_SECRET_BYTES} are needed (create one with: "
                          f"python3 -c 'import secrets; print(secrets.token_hex(32))' > {path})")
    return key


def ensure_secret(path: str | Path) -> tuple[bytes, bool]:
    """Load the secret, creating it (0600) when the file does not exist. Returns (key, created)."""
    path = Path(path)
    if path.exists():
        return load_secret(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(SECRET_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key.hex() + "\n")
    return key, True
