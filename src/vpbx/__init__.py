"""vpbx: a cloud PBX speaking the VPBX CRM integration API."""

__version__ = "0.1.0"
