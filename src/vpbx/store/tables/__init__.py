"""All tables. Each feature keeps its tables in its own module; importing this
package registers every one of them on ``Base.metadata`` (Alembic reads it)."""

from vpbx.store.base import Base
from vpbx.store.tables.directory import Extension, Group, GroupMember, User
from vpbx.store.tables.tenancy import ApiKey, CustomRole, Domain, Integration

__all__ = [
    "ApiKey",
    "Base",
    "CustomRole",
    "Domain",
    "Extension",
    "Group",
    "GroupMember",
    "Integration",
    "User",
]
