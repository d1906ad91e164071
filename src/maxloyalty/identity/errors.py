"""Refusals of authentication and authorization: tokens, keys, sign-in, roles."""

from __future__ import annotations

from maxloyalty.kit.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    Rejection,
    TooManyRequests,
    Unauthorized,
)


class AccountBlocked(Forbidden):
    code = "account_blocked"
    message = "This account is blocked."


class AccountLocked(Rejection, TooManyRequests):
    code = "account_locked"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    message = "No such API key."


class ApiKeyRevoked(Unauthorized):
    code = "api_key_revoked"
    message = "The API key was revoked."


class ApiKeySuspended(Unauthorized):
    code = "api_key_suspended"
    message = "The API key is switched off."


class InvalidApiKey(Unauthorized):
    code = "invalid_api_key"
    message = "The API key is invalid."


class InvalidCredentials(Rejection, Unauthorized):
    code = "invalid_credentials"
    message = "Wrong login or password."


class WrongCurrentPassword(InvalidCredentials):
    status = 403
    message = "The current password is wrong."


class InvalidInitData(Unauthorized):
    code = "invalid_init_data"


class InvalidPhone(Invalid):
    code = "invalid_phone"


class InvalidRefreshToken(Unauthorized):
    code = "invalid_refresh_token"
    message = "The refresh token is not valid."


class InvalidSignature(Unauthorized):
    code = "invalid_signature"
    message = "The request signature is missing or wrong."


class InvalidToken(Unauthorized):
    code = "invalid_token"
    message = "The access token is invalid."


class NoActiveRole(Forbidden):
    code = "no_active_role"
    message = "You have no active staff role here."


class NotAuthenticated(Unauthorized):
    code = "not_authenticated"
    message = "Authentication is required."


class RefreshTokenReused(Rejection, Unauthorized):
    code = "refresh_token_reused"
    message = "This refresh token was already used; the session is revoked."


class RoleForbidden(Forbidden):
    code = "role_forbidden"
    message = "Your role may not do this."


class SessionRevoked(Unauthorized):
    code = "session_revoked"
    message = "This session has ended (signed out, blocked or changed); sign in again."


class TenantRequired(Forbidden):
    code = "tenant_required"
    message = "The token carries no tenant."


class TokenExpired(Unauthorized):
    code = "token_expired"
    message = "The access token has expired."


class TenantChoiceRequired(Conflict):
    code = "tenant_choice_required"


# What any authenticated route may answer about the caller's credentials.
CREDENTIAL_REFUSALS = (
    NotAuthenticated,
    InvalidToken,
    TokenExpired,
    SessionRevoked,
    InvalidApiKey,
    ApiKeyRevoked,
    ApiKeySuspended,
    InvalidSignature,
)
