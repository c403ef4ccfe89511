"""``rollback(settings)``: the previous champion serves again, at once, without downtime.

The previous champion stays loaded after every promotion, so a rollback is a switch of the serving
file (and the MLflow alias); if it was unloaded meanwhile it is fetched from MLflow and loaded
first. A challenger in shadow against the rolled-back champion is rejected (its pairs compared it
with a model that no longer serves).
"""

from __future__ import annotations

from emberwatch.common.config import Settings
from emberwatch.contracts.events import ModelDecision
from services.gatekeeper.gatekeeper import Gatekeeper
from services.gatekeeper.publish import publish_decisions_sync
from services.gatekeeper.registry import CHAMPION
from services.gatekeeper.serving_control import state_lock
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.triton_repo import head_versions_on_disk


class RollbackError(RuntimeError):
    """There is nothing to roll back to."""


def rollback_decisions(settings: GatekeeperSettings, gatekeeper: Gatekeeper | None = None) -> list[ModelDecision]:
    gk = gatekeeper or Gatekeeper(settings)
    serving = gk.serving
    with state_lock(settings):
        history = serving.history()
        current = serving.champion()
        if current is None or len(history) < 2:
            raise RollbackError(f"no previous champion to roll back to (champions so far: {history})")
        target = history[-2]
        out: list[ModelDecision] = []
        shadow = gk.shadows.load()
        if shadow is not None:
            out += gk._end_shadow(shadow, "rejected", f"champion {current} was rolled back to {target} "
                                  "while this challenger was in shadow", gk_evidence(shadow, gk),
                                  None, {"pairs_by_source": shadow.n_by_source()})
        if int(target) not in head_versions_on_disk(serving.repo):
            folder = gk.registry.download_version_head(target, settings.gatekeeper_dir / "rollback" / target)
            serving.add_head(target, folder)
        new_history = history[:-1]
        previous = new_history[-2] if len(new_history) >= 2 else None
        serving.switch_champion(target, previous=previous, history=new_history)
        gk.registry.set_alias(CHAMPION, target)
        serving.retire_unused()
        decision = gk._decide(candidate_version=current, champion_version=target, decision="rolled_back",
                              reason=f"rolled back by hand: champion {current} replaced by the previous "
                                     f"champion {target}",
                              evidence=gk_evidence(None, gk), run_id=gk.registry.run_id_of(current),
                              basis="operator")
        return out + [decision]


def gk_evidence(shadow, gk: Gatekeeper):
    from services.gatekeeper.decide_promotion import decide_promotion
    from services.gatekeeper.evidence import gate_evidence

    if shadow is None:
        from emberwatch.contracts.events import Evidence

        return Evidence()
    return gate_evidence(decide_promotion(shadow.counts(), gk.settings.thresholds()))


def rollback(settings: Settings | None = None, *, publish: bool = True) -> ModelDecision:
    """Restore the previous champion; emit ``rolled_back`` on models.decisions.v1. Returns it."""
    from services.gatekeeper.promote import as_gatekeeper_settings

    settings = as_gatekeeper_settings(settings)
    decisions = rollback_decisions(settings)
    if publish:
        publish_decisions_sync(settings, decisions)
    return decisions[-1]
