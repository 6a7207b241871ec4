"""The demo company a fresh server starts with: employees, departments and, where the
features exist, numbers (feature modules add theirs through ``DEMO_EXTENSIONS``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from vpbx.schemas.groups import GroupCreate, MemberIn
from vpbx.schemas.users import MobileRedirectIn, UserCreate
from vpbx.services import groups, users
from vpbx.services import numbers as numbers_demo
from vpbx.services import sims as sims_demo
from vpbx.services.tenancy import CreatedDomain, create_domain
from vpbx.store.tables import Domain
from vpbx.telephony.sim import Auto

DEMO_DOMAIN = "demo.vpbx.local"

# (login, name, position, ext, role, mobile)
EMPLOYEES = [
    ("admin", "Администратор", "Администратор", "701", "admin", ""),
    ("user1", "Пользователь", "Менеджер", "702", "user", "79261904198"),
    ("director", "Директор", "Директор", "703", "admin", ""),
    ("manager", "Ольга Смирнова", "Менеджер", "704", "user", ""),
    ("ivan", "Иван Петров", "Менеджер", "707", "user", "79161234567"),
    ("maria", "Мария Кузнецова", "Менеджер", "708", "user", ""),
    ("sergey", "Сергей Волков", "Инженер", "709", "user", ""),
    ("anna", "Анна Соколова", "Инженер", "710", "user", ""),
    ("elena", "Елена Попова", "Кадровик", "711", "group_head", ""),
    ("dmitry", "Дмитрий Лебедев", "Бухгалтер", "712", "restricted_user", ""),
]
# (id, name, ext, call_order, members)
DEPARTMENTS = [
    ("sales", "Отдел продаж", "700", "BYORDER", ["admin", "manager", "ivan", "maria"]),
    ("support", "Техподдержка", "705", "EVENLY", ["sergey", "anna", "user1"]),
    ("hr", "Отдел кадров", "706", "ALL", ["elena", "director"]),
]

# The demo's phones (``vpbx serve``'s demo domain only, not stored: set at every start): every employee's phone
# is registered and, when it rings, answers after ``after`` seconds ``share`` of the time (otherwise it rings on,
# like a person away from the desk) and the employee hangs up after ``talk`` seconds.
PHONE_ANSWER_SHARE = 0.8
PHONE_AFTER = (3.0, 4.0, 5.0, 6.0, 7.0)  # seconds to pick up, by the employee's place in EMPLOYEES
PHONE_TALK = (45.0, 60.0, 90.0)  # seconds of conversation, likewise

DemoExtension = Callable[[AsyncSession, Domain, datetime], Awaitable[None]]
DEMO_EXTENSIONS: list[DemoExtension] = []
DEMO_EXTENSIONS += [numbers_demo.demo_numbers, sims_demo.demo_sims]  # §9-10: numbers, SIM cards


async def create_demo(session: AsyncSession, now: datetime, *, name: str = DEMO_DOMAIN,
                      api_key: str | None = None, legacy_token: str | None = None) -> CreatedDomain:
    created = await create_domain(session, name, now, api_key=api_key, legacy_token=legacy_token)
    await populate(session, created.domain, now)
    return created


async def populate(session: AsyncSession, domain: Domain, now: datetime) -> None:
    for login, name, position, ext, role, mobile in EMPLOYEES:
        redirect = MobileRedirectIn(enabled=True, delay=15) if mobile else None
        await users.create(session, domain, UserCreate(login=login, name=name, position=position, ext=ext,
                                                       role=role, mobile=mobile or None,
                                                       mobile_redirect=redirect), now)
    for group_id, name, ext, order, members in DEPARTMENTS:
        data = GroupCreate(name=name, ext=ext, call_order=order, call_duration=10,  # type: ignore[arg-type]
                           users=[MemberIn(login=m, calls_enable=True) for m in members])
        await groups.create(session, domain, data, now, group_id=group_id)
    for extend in DEMO_EXTENSIONS:
        await extend(session, domain, now)


def phone_behaviour(login: str) -> Auto:
    """How a demo employee's phone behaves when it rings (any other login: like the first employee)."""
    i = next((n for n, e in enumerate(EMPLOYEES) if e[0] == login), 0)
    return Auto("answer", PHONE_AFTER[i % len(PHONE_AFTER)], PHONE_TALK[i % len(PHONE_TALK)],
                share=PHONE_ANSWER_SHARE)
