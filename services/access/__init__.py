"""Access control: API tokens, each with one role, checked on every HTTP endpoint."""
