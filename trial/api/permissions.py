from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from trial import access


class IsTrialStaff(BasePermission):
    """Signed in, active, and holding a staff role in this trial."""

    message = "You need a staff account on this trial."

    def has_permission(self, request: Request, view: Any) -> bool:
        return access.access_for(request.user, getattr(request, "trial", None)).is_staff_member


def requires(perm: access.Perm) -> type[BasePermission]:
    """A permission class for one entry of the role matrix."""

    class _Requires(BasePermission):
        message = f"Your role may not do this ({perm.value})."

        def has_permission(self, request: Request, view: Any) -> bool:
            return access.has_perm(request.user, perm, trial=getattr(request, "trial", None))

    _Requires.__name__ = f"Requires_{perm.value}"
    return _Requires
