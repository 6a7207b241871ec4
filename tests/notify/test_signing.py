"""Standard Webhooks signing: the published vector, a hand-computed one, tampering and tolerance."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpbx.notify.signing import (
    SignatureError,
    decode_secret,
    new_secret,
    sign,
    signature,
    verify,
)

# The test vector published with the Standard Webhooks specification.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = bytes(range(32))
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = "cmd=history&user=ivanov&groupRealName=Отдел".encode()
TS = 1_768_208_400


def by_hand(key: bytes, msg_id: str, ts: int, body: bytes) -> str:
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_published_vector() -> None:
    assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": "1614265330",
        "webhook-signature": VECTOR_SIGNATURE,
    }
    verify(VECTOR_SECRET, {"webhook-id": VECTOR_ID, "webhook-timestamp": "1614265330",
                           "webhook-signature": VECTOR_SIGNATURE}, VECTOR_BODY, now=VECTOR_TS)  # fmt: skip


def test_hand_computed_vector() -> None:
    headers = sign(SECRET, "msg_1", TS, BODY)
    assert headers["webhook-signature"] == by_hand(KEY, "msg_1", TS, BODY)
    assert headers["webhook-timestamp"] == str(TS)
    assert headers["webhook-id"] == "msg_1"
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}


def test_secret_without_prefix_is_still_base64() -> None:
    # What the reference libraries do with a secret pasted without its prefix.
    bare = VECTOR_SECRET.removeprefix("whsec_")
    assert signature(bare, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE


def test_secret_that_is_not_base64_is_used_as_text() -> None:
    secret = "d47f9e88-cbe3-4961-8deb-ce55c169f40c"
    assert decode_secret(secret) == secret.encode()
    assert signature(secret, "m", TS, BODY) == by_hand(secret.encode(), "m", TS, BODY)


@pytest.mark.parametrize("secret", ["", "whsec_", "whsec_not base64!", "whsec_abc"])
def test_bad_secrets_are_refused(secret: str) -> None:
    with pytest.raises(ValueError):
        decode_secret(secret)


def test_new_secret_round_trips() -> None:
    one, two = new_secret(), new_secret()
    assert one.startswith("whsec_") and one != two
    assert len(decode_secret(one)) == 32
    headers = sign(one, "msg_x", TS, BODY)
    verify(one, headers, BODY, now=TS)
    with pytest.raises(SignatureError):
        verify(two, headers, BODY, now=TS)


def test_empty_id_is_refused() -> None:
    with pytest.raises(ValueError):
        sign(SECRET, "", TS, BODY)


# --- verify ------------------------------------------------------------------------------------


def good() -> dict[str, str]:
    return sign(SECRET, "msg_1", TS, BODY)


def test_verify_accepts_a_good_delivery_with_any_header_case() -> None:
    verify(SECRET, good(), BODY, now=TS)
    verify(SECRET, {k.title(): v for k, v in good().items()}, BODY, now=TS)
    verify(SECRET, {k.upper(): v for k, v in good().items()}, BODY, now=TS)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda h, b: (h, b + b" "),
        lambda h, b: (h, b.replace(b"ivanov", b"petrov")),
        lambda h, b: (h, b""),
        lambda h, b: ({**h, "webhook-id": "msg_2"}, b),
        lambda h, b: ({**h, "webhook-timestamp": str(TS + 1)}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"][:-4] + "AAA="}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].replace("v1,", "v2,")}, b),
        lambda h, b: ({**h, "webhook-signature": h["webhook-signature"].removeprefix("v1,")}, b),
        lambda h, b: ({**h, "webhook-signature": ""}, b),
    ],
)
def test_verify_rejects_tampering(tamper: object) -> None:
    headers, body = tamper(good(), BODY)  # type: ignore[operator]
    with pytest.raises(SignatureError):
        verify(SECRET, headers, body, now=TS)


def test_verify_rejects_another_secret() -> None:
    other = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(SignatureError, match="no matching"):
        verify(other, good(), BODY, now=TS)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_verify_rejects_missing_headers(missing: str) -> None:
    headers = {k: v for k, v in good().items() if k != missing}
    with pytest.raises(SignatureError, match=missing):
        verify(SECRET, headers, BODY, now=TS)


@pytest.mark.parametrize("ts", ["abc", "", "1.5", "-5", "1e9"])
def test_verify_rejects_malformed_timestamps(ts: str) -> None:
    with pytest.raises(SignatureError):
        verify(SECRET, {**good(), "webhook-timestamp": ts}, BODY, now=TS)


@pytest.mark.parametrize(
    ("now", "ok"),
    [
        (TS, True),
        (TS + 300, True),
        (TS - 300, True),
        (TS + 301, False),  # replayed too late
        (TS - 301, False),  # from the future
        (TS + 3600, False),
    ],
)
def test_verify_timestamp_tolerance(now: int, ok: bool) -> None:
    if ok:
        verify(SECRET, good(), BODY, now=now)
    else:
        with pytest.raises(SignatureError, match="tolerance"):
            verify(SECRET, good(), BODY, now=now)


def test_verify_custom_tolerance() -> None:
    verify(SECRET, good(), BODY, now=TS + 3600, tolerance=3600)
    with pytest.raises(SignatureError):
        verify(SECRET, good(), BODY, now=TS + 10, tolerance=5)


def test_verify_default_clock_rejects_an_old_delivery() -> None:
    with pytest.raises(SignatureError, match="tolerance"):
        verify(VECTOR_SECRET, sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY), VECTOR_BODY)


def test_verify_accepts_any_of_several_signatures() -> None:
    # During a secret rotation the sender signs with both; one valid entry is enough.
    old = "whsec_" + base64.b64encode(b"o" * 32).decode()
    stale = signature(old, "msg_1", TS, BODY)
    headers = {**good(), "webhook-signature": f"v1a,xyz {stale} {good()['webhook-signature']}"}
    verify(SECRET, headers, BODY, now=TS)
    with pytest.raises(SignatureError):
        verify(SECRET, {**good(), "webhook-signature": f"{stale} v1,bm90LWEtc2ln"}, BODY, now=TS)


def test_verify_reports_a_bad_secret_as_a_signature_error() -> None:
    with pytest.raises(SignatureError):
        verify("whsec_not base64!", good(), BODY, now=TS)


@given(
    key=st.binary(min_size=1, max_size=64),
    msg_id=st.text(min_size=1, max_size=40),
    ts=st.integers(min_value=0, max_value=2**40),
    body=st.binary(max_size=200),
)
def test_round_trip_and_single_byte_tampering(key: bytes, msg_id: str, ts: int, body: bytes) -> None:
    secret = "whsec_" + base64.b64encode(key).decode()
    headers = sign(secret, msg_id, ts, body)
    assert headers["webhook-signature"] == by_hand(key, msg_id, ts, body)
    verify(secret, headers, body, now=ts)
    with pytest.raises(SignatureError):
        verify(secret, headers, body + b"\x00", now=ts)
