"""Refusals about loyalty programmes and their levels."""

from __future__ import annotations

from maxloyalty.kit.errors import Conflict, Invalid, NotFound, ValidationFailed


class InvalidLevels(Invalid):
    code = "invalid_levels"
    message = "Levels need strictly increasing min_spent, starting at 0."


class ProgramExists(Conflict):
    code = "program_exists"
    message = "A programme already exists here."


class ProgramNotFound(NotFound):
    code = "program_not_found"
    message = "No such programme."


class RequiredSetting(ValidationFailed):
    """A PATCH sent null for a setting that must have a value (see the README's PATCH rule)."""
