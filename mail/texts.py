"""The words of Stellar's e-mails, in French and English (plain text).

Order e-mails carry both languages (French first: our customers write French); a password-reset
e-mail is in the language of the page that asked for it. Links use ``api.public_url``.
"""

from __future__ import annotations

from core.settings import Settings


def _base(settings: Settings) -> str:
    return settings.api.public_url.rstrip("/")


def order_event_mail(settings: Settings, order_id: int, kind: str, payload: dict) -> tuple[str, str] | None:
    """(subject, body) of an order event's e-mail, or None when that kind sends none.

    ``kind``: ``status`` (final status; ``payload['report']``, models.orders.OrderReport) or
    ``retention`` (``payload``: delete_on ISO date, frames, zip_url)."""
    link = f"{_base(settings)}/app/orders/{order_id}"
    target = payload.get("target_name") or f"#{order_id}"
    if kind == "status":
        report = payload.get("report") or {}
        status = payload.get("status", "")
        frames = report.get("frames_accepted", 0)
        minutes = report.get("integration_minutes", 0)
        captured = report.get("credits_captured", 0)
        # Reports stored before the ledger words were fixed say credits_refunded (docs/pricing.md §5).
        released = report.get("credits_released", report.get("credits_refunded", 0))
        subject = f"Stellar — commande {order_id} ({target}) : {status} / order {order_id}: {status}"
        body = (
            f"Votre commande {order_id} ({target}) est terminée : {status}.\n"
            f"Images acceptées : {frames}, intégration : {minutes} min.\n"
            f"Crédits débités : {captured}, libérés : {released}.\n"
            f"Rapport et images : {link}\n\n"
            f"Your order {order_id} ({target}) has ended: {status}.\n"
            f"Frames accepted: {frames}, integration: {minutes} min.\n"
            f"Credits captured: {captured}, released: {released}.\n"
            f"Report and frames: {link}\n"
        )
        return subject, body
    if kind == "retention":
        when = str(payload.get("delete_on", ""))[:10]
        frames = payload.get("frames", 0)
        zip_url = payload.get("zip_url") or link
        subject = f"Stellar — vos images de {target} seront supprimées le {when} / frames deleted on {when}"
        body = (
            f"Les {frames} images de votre commande {order_id} ({target}) seront supprimées le {when}.\n"
            f"Téléchargez-les avant : {zip_url}\n\n"
            f"The {frames} frames of your order {order_id} ({target}) will be deleted on {when}.\n"
            f"Download them before: {zip_url}\n"
        )
        return subject, body
    return None


def password_reset_mail(settings: Settings, token: str, lang: str, minutes: int) -> tuple[str, str]:
    """(subject, body) of the e-mail carrying a password-reset link valid ``minutes``."""
    link = f"{_base(settings)}/app/password-reset/{token}"
    if lang == "fr":
        return ("Stellar — réinitialiser votre mot de passe",
                f"Pour choisir un nouveau mot de passe, ouvrez ce lien (valable {minutes} minutes, une seule fois) :\n"
                f"{link}\n\nSi vous n'avez rien demandé, ignorez ce message : votre mot de passe ne change pas.\n")
    return ("Stellar — reset your password",
            f"To choose a new password, open this link (valid for {minutes} minutes, once):\n"
            f"{link}\n\nIf you did not ask for this, ignore this message: your password stays as it is.\n")


def payment_received_mail(settings: Settings, credits: int, bucket: str, reason: str) -> tuple[str, str]:
    """(subject, body) of the receipt for a grant paid by a pack (``bucket`` pack) or an invoice."""
    link = f"{_base(settings)}/app/credits"
    what_fr = "pack" if bucket == "pack" else "abonnement"
    what_en = "pack" if bucket == "pack" else "subscription"
    return (f"Stellar — paiement reçu : {credits} crédits / payment received: {credits} credits",
            f"Paiement reçu, merci : {credits} crédits ajoutés ({what_fr}).\n{reason}\nVos crédits : {link}\n\n"
            f"Payment received, thank you: {credits} credits added ({what_en}).\n{reason}\nYour credits: {link}\n")


def credits_low_mail(settings: Settings, available: int, threshold: int) -> tuple[str, str]:
    """(subject, body) of the warning that the available balance fell below ``threshold``."""
    packs = f"{_base(settings)}/app/credit-packs"
    return (f"Stellar — plus que {available} crédits / {available} credits left",
            f"Il ne vous reste que {available} crédits disponibles (moins de {threshold}).\n"
            f"Acheter un pack : {packs}\n\n"
            f"You have {available} credits available (fewer than {threshold}).\n"
            f"Buy a pack: {packs}\n")


def _euros(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d} €"


def host_statement_mail(settings: Settings, month: str, lines: list, due_cents: int) -> tuple[str, str]:
    """(subject, body) of a host's monthly statement: the month's entries (``StatementLine``: kind,
    telescope, order, customer alias, credits, cents), their total and the balance due."""
    link = f"{_base(settings)}/app/host/earnings?month={month}"
    total = sum(ln.amount_cents for ln in lines)
    rows = "\n".join(
        f"  {ln.date}  {ln.kind:<9} {ln.telescope or '-':<12} "
        f"{('#' + str(ln.order_id)) if ln.order_id else ln.reference:<14} {ln.customer or '':<16} {_euros(ln.amount_cents)}"
        for ln in lines) or "  —"
    subject = f"Stellar — relevé hôte {month} / host statement {month}"
    body = (
        f"Relevé de vos télescopes pour {month} :\n{rows}\n"
        f"Total du mois : {_euros(total)}. Solde dû : {_euros(due_cents)}.\n"
        f"Détail et CSV : {link}\n\n"
        f"Your telescopes' statement for {month}: {len(lines)} line(s), month total {_euros(total)}, "
        f"balance due {_euros(due_cents)}.\n"
        f"Details and CSV: {link}\n"
    )
    return subject, body
