"""PBX->CRM notifier: the pure parts.

``payloads`` builds the bodies of the PBX->CRM commands (history, event, contact, rating,
webhook) in the form, JSON and legacy dialects and parses the CRM's ``contact`` answer;
``retry`` decides when a failed delivery is tried again; ``signing`` signs and verifies
deliveries the Standard Webhooks way. Nothing here does I/O.
"""
