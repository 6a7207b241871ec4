"""Secrets: API keys and legacy tokens (random, shown once, stored as sha256) and passwords.

Employee passwords are hashed with Argon2id (memory-hard), its parameters kept in the PHC string
(``$argon2id$v=19$m=...,t=...,p=...$salt$hash``) so they can be raised later without breaking stored
hashes. Hashing costs ~20 ms of CPU: callers on the event loop use ``hash_password_async`` /
``check_password_async``, which run it in a small thread pool of its own (argon2 releases the GIL;
the pool's size bounds the memory a burst of creations can take). Hashes written by earlier versions
(``scrypt$salt$digest``) are still verified.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import secrets
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's Argon2id baseline (19 MiB, 2 passes, 1 lane): ~20 ms per hash here.
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# A password the server generates (002 §6.3: an employee created without one) has 96 random bits: no
# work factor changes the odds of guessing it, so it is hashed with Argon2id at its smallest sensible
# cost (1 MiB, 1 pass: ~0.5 ms) and a bulk creation is not held up by hashing nobody will ever attack.
GENERATED_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
# One core is left to the event loop; a burst of creations queues here instead of taking every core.
_POOL = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1), thread_name_prefix="vpbx-hash")


def token(nbytes: int) -> str:
    """A URL-safe random token that does not start with ``-``: people pass keys and passwords as command-line
    arguments (``vpbx key revoke -d x <prefix>``), where a leading dash reads as an option."""
    while True:
        value = secrets.token_urlsafe(nbytes)
        if not value.startswith("-"):
            return value


def new_key() -> str:
    return token(32)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_password() -> str:
    return token(12)


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def _check_scrypt(password: str, stored: str) -> bool:
    try:
        _, salt_b64, digest_b64 = stored.split("$")
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    except (ValueError, binascii.Error):
        return False
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**12, r=8, p=1)
    return hmac.compare_digest(digest, expected)


def check_password(password: str, stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return _check_scrypt(password, stored)
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """Whether a stored hash predates the current algorithm or parameters (rehash it at the next sign-in:
    a generated password's cheaper hash is never signed in with, nobody knows it)."""
    if not stored.startswith("$argon2"):
        return True
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


async def hash_password_async(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_POOL, hash_password, password)


# Generated passwords' hashes are made ahead, a batch at a time in the hashing pool, and a creation takes one from
# the stock: it never waits for the pool. Measured on PostgreSQL at 32 concurrent writers: a create that handed its
# hash to the pool waited a turn of the busy event loop and of the GIL for 0.5 ms of hashing (p50 95 ms against
# 52 taking one ready; 555 against 694 writes/s). Only hashes are kept; each password is dropped once hashed.
STOCK_LOW, STOCK_BATCH = 16, 32
_stock: list[str] = []
_refill: Future[list[str]] | None = None
_refill_lock = threading.Lock()


def _generated_batch(n: int) -> list[str]:
    return [GENERATED_HASHER.hash(new_password()) for _ in range(n)]


def _stock_up(done: Future[list[str]]) -> None:
    if not done.cancelled() and done.exception() is None:
        _stock.extend(done.result())


def _refilling() -> Future[list[str]]:
    """The batch being made, started if none is (a thread's future: any event loop may wait for it)."""
    global _refill
    with _refill_lock:
        if _refill is None or _refill.done():
            _refill = _POOL.submit(_generated_batch, STOCK_BATCH)
            _refill.add_done_callback(_stock_up)  # before any waiter's: the stock is filled when they wake
        return _refill


async def generated_password_hash_async() -> str:
    """The hash of a freshly generated password that nobody is told (002 §6.3's default)."""
    while True:
        try:
            hashed = _stock.pop()
        except IndexError:  # the first creation, or a burst past the stock: wait for the batch
            await asyncio.wrap_future(_refilling())
            continue
        if len(_stock) < STOCK_LOW:
            _refilling()
        return hashed


async def check_password_async(password: str, stored: str) -> bool:
    return await asyncio.get_running_loop().run_in_executor(_POOL, check_password, password, stored)
