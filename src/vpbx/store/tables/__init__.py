"""All tables. Each feature keeps its tables in its own module; importing this
package registers every one of them on ``Base.metadata`` (Alembic reads it)."""

from vpbx.store.base import Base
from vpbx.store.tables.calls import CallRecord, InnerCallRecord
from vpbx.store.tables.carriers import CarrierPeer  # the operator's SIP carriers (issue 16)
from vpbx.store.tables.cluster import ClusterNode, DomainLease, PendingCallback  # nodes and domain ownership (issue 15)
from vpbx.store.tables.console import ConsoleSession  # the web cabinet's sessions
from vpbx.store.tables.directory import Extension, Group, GroupMember, User
from vpbx.store.tables.legacy import LegacyUserMap  # legacy command API: CRM user ids -> employees
from vpbx.store.tables.numbers import *  # noqa: F403 - §9-11: numbers, IVR menus, SIM cards, blacklist
from vpbx.store.tables.outbox import DeliveryAttempt, DeliveryHealth, OutboxRow
from vpbx.store.tables.ratings import RatingTelnum  # quality ratings (002 §2.4): numbers that ask
from vpbx.store.tables.settings import *  # noqa: F403 - §12.2-12.8, §13, §14: company settings
from vpbx.store.tables.sip import SipCredential  # employees' SIP digest HA1 (issue 16)
from vpbx.store.tables.tenancy import ApiKey, CustomRole, Domain, Integration
from vpbx.store.tables.trunks import *  # noqa: F403 - §15-18: SIP registrations, branches, webhooks

__all__ = [
    "ApiKey",
    "Base",
    "CallRecord",
    "CarrierPeer",
    "ClusterNode",
    "ConsoleSession",
    "CustomRole",
    "DeliveryAttempt",
    "DeliveryHealth",
    "Domain",
    "DomainLease",
    "Extension",
    "Group",
    "GroupMember",
    "InnerCallRecord",
    "Integration",
    "LegacyUserMap",
    "OutboxRow",
    "PendingCallback",
    "RatingTelnum",
    "SipCredential",
    "User",
]
