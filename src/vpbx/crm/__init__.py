"""The CRM developer's kit, receiving side: parse, authenticate and answer the PBX's requests.

``Receiver`` is framework-free (``await receiver.handle(body, headers)``) and an ASGI app; the notices are
the classes the PBX builds its requests from (``vpbx.notify.payloads``).
"""

from vpbx.crm.dedupe import Claim, DedupeStore, MemoryDedupe, RedisDedupe, SqliteDedupe
from vpbx.crm.parse import MalformedRequest, ParsedRequest, decode_body, parse_request, parse_start
from vpbx.crm.receiver import Answer, Receiver
from vpbx.notify.payloads import (
    CallStatus,
    ContactAnswer,
    ContactQuery,
    EventNotice,
    EventType,
    HistoryNotice,
    Notice,
    RatingNotice,
    WebhookNotice,
)

__all__ = [
    "Answer",
    "CallStatus",
    "Claim",
    "ContactAnswer",
    "ContactQuery",
    "DedupeStore",
    "EventNotice",
    "EventType",
    "HistoryNotice",
    "MalformedRequest",
    "MemoryDedupe",
    "Notice",
    "ParsedRequest",
    "RatingNotice",
    "Receiver",
    "RedisDedupe",
    "SqliteDedupe",
    "WebhookNotice",
    "decode_body",
    "parse_request",
    "parse_start",
]
