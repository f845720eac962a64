"""Domain errors: services raise these; the API and pages turn them into clear messages."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """An expected refusal, shown to the user as it is. ``status`` is the HTTP status the API uses."""

    status = 400

    def __init__(self, message: str, *, errors: dict[str, list[str]] | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = errors or {}
        self.extra = extra or {}


class NotAllowed(ApplicationError):
    status = 403


class NotFound(ApplicationError):
    status = 404


class Conflict(ApplicationError):
    status = 409


class DataLocked(ApplicationError):
    """The trial's data may not change (the database is locked)."""

    status = 423


class ConfigurationFrozen(Conflict):
    """Arms, ratios and strata cannot change once anyone is randomised."""


class StudyClosed(Exception):
    """A participant's page while the trial's database is locked: answered with a polite page."""


class LinkNotValid(Exception):
    """A participant's link that does not open their pages: answered with a page for participants
    (what happened and how to get a working link), never the staff "Not found" page. ``replaced``
    when the link was theirs and a newer one has been issued; ``site_name`` then names their site,
    ``site`` is that site (for its study team's contact) and ``token`` the link, so the page can
    offer to send the current link to the contact details on file."""

    def __init__(
        self, *, replaced: bool = False, trial_name: str = "", site_name: str = "", site: Any = None, token: str = ""
    ) -> None:
        super().__init__("This link is not valid.")
        self.replaced, self.trial_name, self.site_name = replaced, trial_name, site_name
        self.site, self.token = site, token


def lock_refusal(exc: BaseException) -> DataLocked | None:
    """The database-level lock guard's refusal (SQLSTATE WB423) as a DataLocked, else None."""
    cause: BaseException | None = exc
    while cause is not None:
        if getattr(cause, "sqlstate", None) == "WB423":
            return DataLocked("The trial database is locked: its data can no longer change.")
        cause = cause.__cause__
    return None


class NotAuthenticated(ApplicationError):
    """Sign-in refused: a missing or wrong second factor (the API answers 401)."""

    status = 401


class TooManyAttempts(ApplicationError):
    """Too many failed sign-ins or password checks: refused until an administrator unlocks, or the wait passes."""

    status = 429
