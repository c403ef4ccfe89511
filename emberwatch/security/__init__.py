"""Who may act as an operator: signed operator commands (docs/security.md)."""
