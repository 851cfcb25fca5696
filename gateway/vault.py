"""Provider credentials encrypted at rest (Fernet: AES-128-CBC with an HMAC-SHA256, from `cryptography`).

The key comes from OBSERVATORY_GATEWAY_SECRET_KEY (any string of 32+ characters, stretched with SHA-256), else from
`$OBSERVATORY_HOME/gateway.key`, created on first use readable by its owner only. Every process that stores or
reads credentials (web, gateway) must see the same key: several hosts set the variable. Losing the key loses the
stored credentials (enter them again), nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import os
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


class VaultError(Exception):
    """A stored credential cannot be decrypted (the key changed)."""


def key_file() -> Path:
    return Path(settings.DATA_DIR) / "gateway.key"


def ensure_key_file() -> Path:
    """Create the key file if neither it nor OBSERVATORY_GATEWAY_SECRET_KEY exists (what `observatory up` does)."""
    path = key_file()
    if not settings.GATEWAY_SECRET_KEY and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path  # another process made it first
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode())
    return path


@lru_cache(maxsize=4)
def _fernet(secret: str, path: str) -> Fernet:
    if secret:
        return Fernet(base64.urlsafe_b64encode(hashlib.sha256(secret.encode()).digest()))
    return Fernet(Path(path).read_text().strip().encode())


def _current() -> Fernet:
    return _fernet(settings.GATEWAY_SECRET_KEY, str(ensure_key_file()))


def encrypt(plaintext: str) -> str:
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _current().decrypt(token.encode()).decode()
    except InvalidToken:
        raise VaultError("a stored provider key cannot be decrypted: the gateway's secret key changed; "
                         "store the provider key again") from None
