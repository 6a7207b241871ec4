"""Queries over other operators' numbers (§15-16), other PBXs (§17) and webhooks (§18)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.store.paging import Page
from vpbx.store.repositories.directory import paged
from vpbx.store.tables.trunks import Branch, SipRegistration, SipUriTransfer, WebhookEvent, WebhookSubscription

# --- SIP registrations (§15) ---------------------------------------------------------------


async def find_sipreg(session: AsyncSession, domain_id: int, telnum: str) -> SipRegistration | None:
    return await session.scalar(
        select(SipRegistration).where(SipRegistration.domain_id == domain_id, SipRegistration.telnum == telnum)
    )


async def list_sipregs(session: AsyncSession, domain_id: int, page: Page) -> tuple[list[SipRegistration], int]:
    return await paged(session, select(SipRegistration).where(SipRegistration.domain_id == domain_id),
                       SipRegistration.search_text, page, SipRegistration.id)


async def all_sipregs(session: AsyncSession) -> list[SipRegistration]:
    """Every domain's registrations, for the SIP side that keeps them registered."""
    return list((await session.scalars(select(SipRegistration).order_by(SipRegistration.id))).all())


async def count_sipregs(session: AsyncSession, domain_id: int) -> int:
    return await session.scalar(select(func.count()).where(SipRegistration.domain_id == domain_id)) or 0


# --- SIP URI transfers (§16) ---------------------------------------------------------------


async def find_sipuri(session: AsyncSession, domain_id: int, telnum: str) -> SipUriTransfer | None:
    return await session.scalar(
        select(SipUriTransfer).where(SipUriTransfer.domain_id == domain_id, SipUriTransfer.telnum == telnum)
    )


async def list_sipuris(session: AsyncSession, domain_id: int, page: Page) -> tuple[list[SipUriTransfer], int]:
    return await paged(session, select(SipUriTransfer).where(SipUriTransfer.domain_id == domain_id),
                       SipUriTransfer.search_text, page, SipUriTransfer.id)


async def count_sipuris(session: AsyncSession, domain_id: int) -> int:
    return await session.scalar(select(func.count()).where(SipUriTransfer.domain_id == domain_id)) or 0


async def uri_taken(session: AsyncSession, uri: str) -> bool:
    return (await session.scalar(select(SipUriTransfer.id).where(SipUriTransfer.uri == uri))) is not None


async def sipuri_by_user(session: AsyncSession, user: str) -> SipUriTransfer | None:
    """The §16 address whose user part is ``user``, on any domain (an INVITE to it: incoming SIP routing; the
    user part alone is unguessable, whatever host the other operator puts after it)."""
    return await session.scalar(select(SipUriTransfer).where(
        SipUriTransfer.uri.startswith(f"{user}@", autoescape=True)).limit(1))


# --- branches (§17) ------------------------------------------------------------------------


async def find_branch(session: AsyncSession, domain_id: int, remote_domain: str) -> Branch | None:
    return await session.scalar(
        select(Branch).where(Branch.domain_id == domain_id, Branch.remote_domain == remote_domain)
    )


async def list_branches(session: AsyncSession, domain_id: int, page: Page) -> tuple[list[Branch], int]:
    return await paged(session, select(Branch).where(Branch.domain_id == domain_id), Branch.search_text, page,
                       Branch.id)


# --- webhooks (§18) ------------------------------------------------------------------------


async def subscriptions(session: AsyncSession, domain_id: int, type_: str | None = None) -> list[WebhookSubscription]:
    stmt = select(WebhookSubscription).where(WebhookSubscription.domain_id == domain_id)
    if type_ is not None:
        stmt = stmt.where(WebhookSubscription.type == type_)
    return list((await session.scalars(stmt.order_by(WebhookSubscription.id))).all())


async def find_subscription(session: AsyncSession, domain_id: int, public_id: str) -> WebhookSubscription | None:
    return await session.scalar(
        select(WebhookSubscription).where(WebhookSubscription.domain_id == domain_id,
                                          WebhookSubscription.public_id == public_id)
    )


async def find_subscription_by_url(session: AsyncSession, domain_id: int, type_: str,
                                   url: str) -> WebhookSubscription | None:
    return await session.scalar(
        select(WebhookSubscription).where(WebhookSubscription.domain_id == domain_id,
                                          WebhookSubscription.type == type_, WebhookSubscription.url == url)
    )


async def events(session: AsyncSession, domain_id: int | None = None, *, after_id: int = 0,
                 limit: int = 1000) -> list[tuple[WebhookEvent, WebhookSubscription]]:
    """Events in creation order with their subscriptions (URL), for the notifier and tests."""
    stmt = (
        select(WebhookEvent, WebhookSubscription)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookEvent.subscription_id)
        .where(WebhookEvent.id > after_id)
    )
    if domain_id is not None:
        stmt = stmt.where(WebhookEvent.domain_id == domain_id)
    rows = await session.execute(stmt.order_by(WebhookEvent.id).limit(limit))
    return [(e, s) for e, s in rows.all()]
