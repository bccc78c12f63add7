"""Steps a person takes in the browser, shared by the web tests."""

from __future__ import annotations

PASSWORD = "correct horse battery"


async def sign_up(page, base: str, email: str, password: str = PASSWORD) -> None:
    await page.goto(f"{base}/app/sign-up")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password (at least 10 characters)").fill(password)
    await page.get_by_role("button", name="Sign up").click()
    await page.wait_for_url(f"{base}/app/plans")


async def sign_in(page, base: str, email: str, password: str) -> int:
    """Submit the sign-in form; returns the HTTP status of the answer."""
    await page.goto(f"{base}/app/sign-in")
    await page.get_by_label("E-mail").fill(email)
    await page.get_by_label("Password", exact=True).fill(password)
    async with page.expect_response(lambda r: r.url.endswith("/app/sign-in") and r.request.method == "POST") as info:
        await page.get_by_role("button", name="Sign in").last.click()
    return (await info.value).status


async def customer_id(web, email: str) -> int:
    """The id of the customer signed up with ``email`` (read from the database)."""
    from sqlmodel import select

    from models.db import Customer

    async with web.sessionmaker() as s:
        return (await s.exec(select(Customer.id).where(Customer.email == email))).one()


async def grant_credits(web, customer: int, amount: int) -> None:
    """Pack credits for ``customer`` through the ledger (as a support adjustment would)."""
    import uuid

    from billing.ledger import Ledger

    await Ledger(web.engine).adjust(customer, amount, actor="test", reason="test credits",
                                    idempotency_key=f"test-{uuid.uuid4()}")
