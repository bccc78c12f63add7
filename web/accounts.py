"""Web sign-up and sign-in: an e-mail + password (argon2id) beside the customer row.

Sign-up goes through ``api.services.customers.create_customer_with_key`` (the same rules as
``stellar customers create``: e-mail syntax, unique e-mail). The API key that service issues is
revoked at once: a web account starts without keys and creates them on its account page.
"""

from __future__ import annotations

from datetime import datetime, timezone

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from api.errors import Unprocessable
from api.services.customers import create_customer_with_key
from models.db import ApiKey, Customer, WebLogin

MIN_PASSWORD = 10
MAX_PASSWORD = 256
_hasher = PasswordHasher()  # argon2id with argon2-cffi's RFC 9106 low-memory defaults


async def sign_up(session: AsyncSession, email: str, password: str, name: str = "") -> Customer:
    """Create a customer that signs in with ``password``. Raises Unprocessable (``password``
    10–256 characters, bad e-mail), Conflict ``email_taken``."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Unprocessable("invalid sign-up", fields={"password": f"{MIN_PASSWORD}–{MAX_PASSWORD} characters"})
    new = await create_customer_with_key(session, email=email, name=name)
    now = datetime.now(timezone.utc)
    await session.exec(update(ApiKey).where(ApiKey.customer_id == new.customer_id).values(revoked_at=now))
    session.add(WebLogin(customer_id=new.customer_id, password_hash=_hasher.hash(password)))
    await session.commit()
    return await session.get(Customer, new.customer_id)


async def check_password(session: AsyncSession, email: str, password: str) -> Customer | None:
    """The customer when ``password`` is theirs, else None (unknown e-mail or wrong password)."""
    row = (await session.exec(
        select(Customer, WebLogin).join(WebLogin, WebLogin.customer_id == Customer.id)
        .where(Customer.email == email.strip().lower())
    )).first()
    if row is None:
        _hasher.hash(password)  # same cost either way: the answer time does not reveal accounts
        return None
    customer, login = row
    try:
        _hasher.verify(login.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(login.password_hash):
        login.password_hash = _hasher.hash(password)
        login.updated_at = datetime.now(timezone.utc)
        await session.commit()
    return customer


async def set_password(session: AsyncSession, customer_id: int, password: str) -> None:
    """Give an existing customer (e.g. one made by ``stellar demo`` or the CLI) a web sign-in, or
    replace its password. Commits. Raises Unprocessable (``password`` length)."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise Unprocessable("invalid password", fields={"password": f"{MIN_PASSWORD}–{MAX_PASSWORD} characters"})
    login = await session.get(WebLogin, customer_id)
    if login is None:
        session.add(WebLogin(customer_id=customer_id, password_hash=_hasher.hash(password)))
    else:
        login.password_hash = _hasher.hash(password)
        login.updated_at = datetime.now(timezone.utc)
    await session.commit()


async def staff_role(session: AsyncSession, customer_id: int) -> str | None:
    """The strongest staff role (``admin`` over ``support``) among the customer's active API keys,
    or None: a web session has the staff powers of its account's keys, read at every request so a
    revoked key ends them at once."""
    roles = set((await session.exec(
        select(ApiKey.role).where(ApiKey.customer_id == customer_id, ApiKey.revoked_at.is_(None))
    )).all())
    return next((r for r in ("admin", "support") if r in roles), None)
