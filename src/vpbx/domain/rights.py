"""Access rights (002 §12.6 ``rights``) and the built-in roles.

A right is ``<section>.<verb>``: the sections are the "Права доступа" headings of
002 (Сотрудники → ``users``, Основные настройки → ``more``, ...), the verbs are
Просмотр ``get``, Создание ``create``, Редактирование ``edit``, Удаление ``delete``.
"""

from __future__ import annotations

SECTIONS = {
    "users": "Сотрудники",
    "groups": "Отделы",
    "telnums": "Номера",
    "sims": "SIM-карты",
    "blacklist": "Черный список",
    "more": "Основные настройки",
    "callerids": "Исходящие номера",
    "restrictions": "Ограничения звонков",
    "local_gw": "Номера других операторов",
    "branches": "Подключение других АТС",
    "history": "История звонков",
    "calls": "Звонки",
}
VERBS = ("get", "create", "edit", "delete")
ALL_RIGHTS = frozenset(f"{s}.{v}" for s in SECTIONS for v in VERBS)

BUILTIN_ROLES = ("admin", "group_head", "user", "restricted_user")

_READ = frozenset(r for r in ALL_RIGHTS if r.endswith(".get"))
BUILTIN_ROLE_RIGHTS: dict[str, frozenset[str]] = {
    "admin": ALL_RIGHTS,
    # A department head may also run departments and place calls.
    "group_head": _READ | {"groups.edit", "calls.create"},
    "user": frozenset({"users.get", "groups.get", "telnums.get", "history.get", "calls.create"}),
    "restricted_user": frozenset({"users.get", "calls.create"}),
}


def is_valid_right(right: str) -> bool:
    return right in ALL_RIGHTS
