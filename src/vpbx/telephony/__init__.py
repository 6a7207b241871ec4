"""Telephony ports: how the engine reaches phones. ``sim`` now, ``sip`` later."""
