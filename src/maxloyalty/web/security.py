"""What every page answer carries: a strict Content Security Policy (no inline script or
style anywhere), and the CSRF check of every form or htmx post.

CSRF is a double submit: a random `csrf` cookie, echoed by the page in a form field or the
`X-CSRF-Token` header (htmx sends it from the page's meta tag). A foreign site can make the
browser send the cookie but cannot read it to echo it. The Origin header, when a browser
sends one, must be ours as well."""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maxloyalty.kit.errors import AppError, Forbidden, PayloadTooLarge
from maxloyalty.runtime import runtime_of

CSRF_COOKIE = "csrf"
# Over https the `__Host-` prefix makes browsers refuse the cookie from a sibling subdomain
# (which could otherwise plant a token of its choosing).
SECURE_CSRF_COOKIE = "__Host-csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
PAGE_PREFIXES = ("/app", "/cashier", "/static")

# Telegram serves its Mini App script itself; Telegram Web shows the guest's app in a
# frame, and nothing else of ours may be framed.
_POLICY = (
    "default-src 'self'",
    "script-src 'self' https://telegram.org",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
)
GUEST_POLICY = "; ".join(
    (*_POLICY, "frame-ancestors 'self' https://web.telegram.org https://*.telegram.org")
)
POLICY = "; ".join((*_POLICY, "frame-ancestors 'none'"))
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(self), microphone=(), geolocation=()"),
]
# The largest form a page posts (a few short fields); anything bigger is not ours.
MAX_FORM_BYTES = 16 * 1024


class CsrfRefused(Forbidden):
    code = "csrf_failed"
    message = "The form has expired or came from elsewhere: reload the page and try again."


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith(PAGE_PREFIXES)


class PageSecurityHeaders:
    """Adds the policy to the pages' answers (the API's JSON needs none of it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_page(scope["path"]):
            await self.app(scope, receive, send)
            return

        policy = GUEST_POLICY if scope["path"].startswith("/app/") else POLICY

        async def with_policy(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"content-security-policy", policy.encode()),
                    *_HEADERS,
                ]
            await send(message)

        await self.app(scope, receive, with_policy)


def _public_origin(request: Request) -> str:
    return urlsplit(runtime_of(request).settings.public_url)._replace(path="").geturl()


def is_secure(request: Request) -> bool:
    """Served over https: the request says so, or (behind a proxy that terminates TLS and
    does not say so) the configured public address is https."""
    return request.url.scheme == "https" or _public_origin(request).startswith("https://")


def _csrf_cookie(request: Request) -> str:
    return SECURE_CSRF_COOKIE if is_secure(request) else CSRF_COOKIE


def csrf_token(request: Request) -> str:
    """The page's token: the cookie's value, or a new one set with this answer."""
    existing = request.cookies.get(_csrf_cookie(request)) or getattr(request.state, "csrf", None)
    if existing:
        return str(existing)
    token = secrets.token_urlsafe(32)
    request.state.csrf = token
    remember_cookie(request, _csrf_cookie(request), token, path="/", max_age=None)
    return token


def remember_cookie(
    request: Request, name: str, value: str | None, *, path: str, max_age: int | None
) -> None:
    """Queue a cookie for this request's answer (`templating.remember_choices` sets it)."""
    # Inside Telegram Web the page is a cross-site frame: only SameSite=None cookies reach
    # it, which browsers accept over https alone. Plain http (development) keeps Lax.
    secure = is_secure(request)
    options: dict[str, object] = {
        "path": path,
        "httponly": True,
        "secure": secure,
        "samesite": "none" if secure else "lax",
    }
    if value is not None:
        options["max_age"] = max_age
    if not hasattr(request.state, "cookies"):
        request.state.cookies = []
    request.state.cookies.append((name, value, options))


class FormTooLarge(PayloadTooLarge):
    code = "form_too_large"
    message = "The form is larger than any page sends."


class FormExpected(AppError):
    status = 415
    code = "form_expected"
    message = "Pages post forms (application/x-www-form-urlencoded)."


async def read_form(request: Request) -> FormData:
    """The posted form: urlencoded only (no files to spool), and small."""
    if request.headers.get("content-length") == "0":
        return FormData()  # a form whose only box is unticked
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise FormExpected()
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise FormTooLarge()
    return await request.form(max_files=0, max_fields=64)


async def check_csrf(request: Request) -> None:
    """A route dependency of every page that changes something."""
    if request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    origin = request.headers.get("origin")
    ours = {f"{request.url.scheme}://{request.url.netloc}", _public_origin(request)}
    if origin and origin not in ours:
        raise CsrfRefused()
    expected = request.cookies.get(_csrf_cookie(request), "")
    given = request.headers.get(CSRF_HEADER)
    if given is None:
        field = (await read_form(request)).get(CSRF_FIELD)
        given = field if isinstance(field, str) else ""
    if not expected or not hmac.compare_digest(expected.encode(), given.encode()):
        raise CsrfRefused()
