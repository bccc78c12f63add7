"""Sessions, CSRF and sign-in throttling of the web app.

* The session is Starlette's signed cookie (``itsdangerous``): ``HttpOnly``, ``SameSite=Lax``,
  ``Secure`` outside dev/test. It holds the customer id, the CSRF token and the language.
* CSRF: a per-session random token, sent back by every form (``csrf_token`` field) and every
  htmx request (``X-CSRF-Token`` header); a POST without the matching token is refused (403).
  The synchronizer-token pattern of the OWASP CSRF Prevention Cheat Sheet.
* Sign-in throttle: after ``web.login_max_failures`` wrong passwords for one e-mail, sign-in for
  that e-mail is refused for ``web.login_lockout_seconds``, even with the right password.
  In-process, like the API's rate limiter: behind several replicas the limit applies per replica.
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time

from fastapi import Request

from api.security import Principal

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


class CsrfRefused(Exception):
    """A state-changing request came without the session's CSRF token."""


class SignInRequired(Exception):
    """The page needs a signed-in customer; the handler redirects to the sign-in page."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def require_csrf(request: Request) -> None:
    """FastAPI dependency for every POST of the web app. Raises CsrfRefused."""
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()  # cached by Starlette: the route's Form() parameters still read it
        sent = form.get(CSRF_FIELD)
    if not expected or not isinstance(sent, str) or not hmac.compare_digest(expected, sent):
        raise CsrfRefused()


def current_language(request: Request) -> str:
    from web.i18n import choose_language

    return choose_language(request.session.get("lang"), request.headers.get("accept-language"))


def start_session(request: Request, customer_id: int, email: str) -> None:
    """Sign in: a fresh session (new CSRF token), keeping only the language choice."""
    lang = request.session.get("lang")
    request.session.clear()
    request.session.update({"cid": customer_id, "email": email, "csrf": secrets.token_urlsafe(32)})
    if lang:
        request.session["lang"] = lang


def web_principal(request: Request) -> Principal:
    """The signed-in customer as the services' :class:`~api.security.Principal` (role customer).
    Raises SignInRequired. ``key_id`` 0: a web session is not an API key."""
    cid = request.session.get("cid")
    if not isinstance(cid, int):
        raise SignInRequired()
    return Principal(customer_id=cid, email=request.session.get("email", ""), role="customer", key_id=0,
                     key_hash=f"web-session:{cid}")


class LoginThrottle:
    """Counts wrong passwords per e-mail; refuses sign-in after ``max_failures`` for ``lockout`` s."""

    def __init__(self, max_failures: int, lockout_seconds: float, clock=time.monotonic) -> None:
        self.max_failures = max_failures
        self.lockout = lockout_seconds
        self._clock = clock
        self._failures: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, email: str) -> int | None:
        """Seconds until ``email`` may try again, or None when it may try now."""
        with self._lock:
            count, since = self._failures.get(email, (0, 0.0))
            if count < self.max_failures:
                return None
            left = self.lockout - (self._clock() - since)
            if left <= 0:
                del self._failures[email]
                return None
            return max(1, int(left))

    def failed(self, email: str) -> None:
        with self._lock:
            count, since = self._failures.get(email, (0, self._clock()))
            # The lockout runs from the failure that reached the limit.
            self._failures[email] = (count + 1, self._clock() if count + 1 >= self.max_failures else since)

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop(email, None)
