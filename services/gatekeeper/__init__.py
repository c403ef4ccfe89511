"""The gatekeeper: Triton serving, infra validation, shadow comparison, promotion on evidence, rollback.

Public operator functions (for the CLI):
``services.gatekeeper.promote.promote(settings, version)``, ``services.gatekeeper.promote.status(settings)``,
``services.gatekeeper.rollback.rollback(settings)``.
"""
