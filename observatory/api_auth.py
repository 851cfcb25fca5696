"""REST API authentication by Observatory API key (Bearer, x-api-key or Basic)."""

from __future__ import annotations

import base64

from rest_framework import authentication, exceptions

from observatory.services import authenticate_key


def key_from_headers(headers) -> str | None:
    """The API key from `Authorization: Bearer`, `x-api-key`, or Basic auth (Langfuse exporter style).

    With Basic auth the key may be either the username or the password (Langfuse sends
    public_key:secret_key; put the Observatory key in either place).
    """
    auth = headers.get("Authorization", "")
    scheme, _, value = auth.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic" and value.strip():
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        for candidate in (password, user):
            if candidate.startswith("obs_"):
                return candidate
        return password or user or None
    api_key = headers.get("X-Api-Key", "")
    return api_key.strip() or None


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """`request.user` is the key's creator (or an anonymous stand-in); `request.auth` is the ApiKey."""

    def authenticate(self, request):
        plaintext = key_from_headers(request.headers)
        if plaintext is None:
            return None
        api_key = authenticate_key(plaintext)
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        return (ApiKeyUser(api_key), api_key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="observatory"'


class ApiKeyUser:
    """A minimal user for key-authenticated API calls: scoped to the key's organization."""

    is_authenticated = True
    is_anonymous = False
    is_superuser = False
    is_staff = False

    def __init__(self, api_key) -> None:
        self.api_key = api_key
        self.pk = None
        self.id = None

    def __str__(self) -> str:
        return f"api-key:{self.api_key.prefix}"
