"""The mini CRM's data: contacts and the call log, in one SQLite database (a file, or ``:memory:``)."""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime

# (name, phone, responsible employee's login: the PBX rings them first when the number's crm option is on)
SEED_CONTACTS = [
    ("ООО Ромашка", "79101234567", "ivan"),
    ("ИП Сидоров", "79031112233", "maria"),
    ("АО Вектор", "78125550101", ""),
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    phone TEXT NOT NULL UNIQUE,
    responsible TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS calls (
    callid TEXT PRIMARY KEY,
    start TEXT NOT NULL,
    direction TEXT NOT NULL,
    phone TEXT NOT NULL,
    user TEXT NOT NULL,
    status TEXT NOT NULL,
    duration INTEGER NOT NULL,
    link TEXT
);
"""


def normalize_phone(phone: str) -> str:
    """Digits only, a Russian ``8XXXXXXXXXX`` as ``7XXXXXXXXXX`` (the PBX sends ``79101234567``)."""
    digits = re.sub(r"\D", "", phone)
    if len(digits) == 11 and digits.startswith("8"):
        digits = "7" + digits[1:]
    return digits


@dataclass(frozen=True)
class Contact:
    id: int
    name: str
    phone: str
    responsible: str


@dataclass(frozen=True)
class CallRecord:
    """One line of the call log, from the PBX's ``history`` notification."""

    callid: str
    start: datetime
    direction: str  # "in" or "out"
    phone: str
    contact_name: str | None
    user: str
    status: str
    duration: int
    link: str | None


class Store:
    def __init__(self, path: str = ":memory:", *, seed: bool = True) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock, self._db:
            self._db.executescript(SCHEMA)
            if seed and not self._db.execute("SELECT 1 FROM contacts LIMIT 1").fetchone():
                self._db.executemany("INSERT INTO contacts (name, phone, responsible) VALUES (?, ?, ?)",
                                     SEED_CONTACTS)

    def close(self) -> None:
        self._db.close()

    def add_contact(self, name: str, phone: str, responsible: str = "") -> Contact:
        with self._lock, self._db:
            cursor = self._db.execute("INSERT INTO contacts (name, phone, responsible) VALUES (?, ?, ?)",
                                      (name, normalize_phone(phone), responsible))
        assert cursor.lastrowid is not None
        return Contact(cursor.lastrowid, name, normalize_phone(phone), responsible)

    def contacts(self) -> list[Contact]:
        with self._lock:
            rows = self._db.execute("SELECT id, name, phone, responsible FROM contacts ORDER BY name").fetchall()
        return [Contact(*row) for row in rows]

    def contact(self, contact_id: int) -> Contact | None:
        with self._lock:
            row = self._db.execute("SELECT id, name, phone, responsible FROM contacts WHERE id = ?",
                                   (contact_id,)).fetchone()
        return Contact(*row) if row else None

    def find_by_phone(self, phone: str) -> Contact | None:
        with self._lock:
            row = self._db.execute("SELECT id, name, phone, responsible FROM contacts WHERE phone = ?",
                                   (normalize_phone(phone),)).fetchone()
        return Contact(*row) if row else None

    def log_call(self, callid: str, start: datetime, direction: str, phone: str, user: str, status: str,
                 duration: int, link: str | None) -> None:
        """Add (or, when the PBX sends the call again, replace) a line of the call log."""
        with self._lock, self._db:
            self._db.execute("INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             (callid, start.isoformat(), direction, phone, user, status, duration, link))

    def calls(self, limit: int = 50) -> list[CallRecord]:
        """The latest calls first, each with the contact's name when the number is known."""
        with self._lock:
            rows = self._db.execute(
                "SELECT c.callid, c.start, c.direction, c.phone, k.name, c.user, c.status, c.duration, c.link "
                "FROM calls c LEFT JOIN contacts k ON k.phone = c.phone ORDER BY c.start DESC LIMIT ?",
                (limit,)).fetchall()
        return [CallRecord(callid, datetime.fromisoformat(start), *rest) for callid, start, *rest in rows]
