"""Business rules; routers call these, these call the database through the scoping helper."""
