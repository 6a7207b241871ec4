"""HTTP APIs: REST v1 (``/crmapi/v1``), the legacy command API and the simulator."""
