"""Errors the domains raise; the API and the CLI turn them into 4xx answers and messages."""

from __future__ import annotations

from typing import Any


class BoomerangError(Exception):
    """Base of the errors a caller can act on."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def errors(self) -> list[dict]:
        return [{"field": self.field, "reason": self.message}]

    def to_dict(self) -> dict:
        return {"errors": self.errors}


class ValidationFailed(BoomerangError):
    """Input that breaks a rule; `errors` names each field and why."""

    status_code = 400

    def __init__(self, errors: list[dict]) -> None:
        first = errors[0] if errors else {"field": None, "reason": "invalid input"}
        super().__init__(first["reason"], field=first.get("field"))
        self._errors = errors

    @property
    def errors(self) -> list[dict]:
        return self._errors

    @classmethod
    def of(cls, exc: Any, whole: str = "body") -> ValidationFailed:
        """Pydantic's ValidationError as ours: each field's dotted path (`whole` for the document) and the reason."""
        return cls(
            [
                {"field": ".".join(str(p) for p in e["loc"]) or whole, "reason": e["msg"].removeprefix("Value error, ")}
                for e in exc.errors(include_url=False)
            ]
        )


class NotFound(BoomerangError):
    status_code = 404


class Conflict(BoomerangError):
    status_code = 409


class LogBusy(RuntimeError):
    """Another process held the event log for longer than the configured wait."""
