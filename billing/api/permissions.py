"""What API keys may do through the REST API: read, never change."""

from __future__ import annotations

from rest_framework import permissions

from observatory.models import ApiKey


class ApiKeysReadOnly(permissions.BasePermission):
    message = "API keys can read budgets and alert rules, not change them: sign in as an admin or a team manager."

    def has_permission(self, request, view) -> bool:
        return request.method in permissions.SAFE_METHODS or not isinstance(request.auth, ApiKey)


def key_of(request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None
