"""Refusals about loyalty programmes and their levels."""

from __future__ import annotations

from maxloyalty.kit.errors import AppError, Conflict, Invalid, NotFound, ValidationFailed


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


class LogoTypeUnsupported(AppError):
    status = 415
    code = "logo_type_unsupported"
    message = "A logo is a PNG, JPEG or WebP image (image/png, image/jpeg or image/webp)."


class LogoInvalid(Invalid):
    code = "logo_invalid"
    message = "The body is not the image its Content-Type says."


class LogoNotFound(NotFound):
    code = "logo_not_found"
    message = "This network's card has no logo."
