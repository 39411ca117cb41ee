"""AWS access: read-only guard, action lists and the permissions the customer role grants."""
