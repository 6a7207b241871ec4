"""The call flows, one module each, as mixins over ``engine.base.EngineBase``: ``ringing`` (legs, ring plans,
events: shared by every flow), ``incoming`` (routing, departments, IVR, voicemail, the CRM's responsible),
``internal``, ``outgoing`` (from a device and click-to-call), ``transfers`` (blind, attended), ``callbacks``
(8.3 advanced=callback) and ``ratings``. ``vpbx.engine.core.CallEngine`` combines them."""
