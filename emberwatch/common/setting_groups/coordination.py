"""What replicas share: the coordination database and the lease of the single-active services."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr


class CoordinationSettings(BaseModel):
    coordination_url: SecretStr | None = Field(
        None,
        description="The coordination database that replicas share (SQLAlchemy URL, secret: it may "
                    "hold a password): tiler fire registry and Mapbox budget, trainer and gatekeeper "
                    "leases. Unset: SQLite at <EMBERWATCH_STATE_DIR>/coordination.sqlite3 (replicas "
                    "on one host); postgresql://user:password@host/db for replicas on several nodes.",
    )

    lease_ttl_s: float = Field(
        15.0, gt=0,
        description="Lease of the trainer and the gatekeeper (one active instance each): renewed every "
                    "third of it; a standby takes over within 1.2x it after the active one dies.",
    )
