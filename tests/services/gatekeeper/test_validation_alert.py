"""Three candidates in a row failing infra validation raise one critical alert, with the reasons."""

from __future__ import annotations

from services.gatekeeper.core.config import Config
from services.gatekeeper.core.effects import RaiseAlert
from services.gatekeeper.core.machine import validation_outcome
from services.gatekeeper.core.state import GatekeeperState
from services.gatekeeper.state_store import StateStore

CONFIG = Config(model_name="m", validation_alert_after=3)


def outcomes(state: GatekeeperState, *results: tuple[str, str | None]) -> tuple[GatekeeperState, list]:
    alerts = []
    for version, problem in results:
        state, effects = validation_outcome(state, CONFIG, version, problem)
        alerts += [e for e in effects if isinstance(e, RaiseAlert)]
    return state, alerts


def test_three_failures_in_a_row_alert_once_with_their_reasons():
    state, alerts = outcomes(GatekeeperState(), ("1", "infra validation: outputs differ by 2e-2"),
                             ("2", "infra validation: head did not load"),
                             ("2", "infra validation: head did not load"))  # redelivered: not counted again
    assert alerts == []
    state, [alert] = outcomes(state, ("3", "infra validation: 2 of 8 known images get another decision"))
    assert alert.alert == "validation_failing" and alert.severity == "critical"
    assert alert.details["versions"] == ["1", "2", "3"]
    assert "known images" in alert.message and "3 candidates in a row" in alert.message


def test_a_pass_resets_the_streak(tmp_path):
    state, alerts = outcomes(GatekeeperState(), ("1", "infra validation: x"), ("2", "infra validation: x"),
                             ("3", None), ("4", "infra validation: x"), ("5", "infra validation: x"))
    assert alerts == []
    StateStore(tmp_path).save(state)
    # the streak survives a restart of the gatekeeper (it lives in the state store)
    _, [alert] = outcomes(StateStore(tmp_path).load(), ("6", "infra validation: x"))
    assert alert.details["versions"] == ["4", "5", "6"]
