"""Pydantic request/response schemas (XCreate, XUpdate, XRead, XPage)."""
