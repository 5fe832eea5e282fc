"""Entrypoints: one Blueprint per concern. Handlers parse, authorize, call one service, map the result."""
