"""The real ``Operations`` behind the bot's commands.

* ``stack_status``: ``emberwatch.stack.manage.status(settings)`` (the local stack's parts).
* ``champion``: the MLflow model registry, alias ``champion`` of the configured model.
* ``promote`` / ``rollback``: the operator functions named by settings
  (``module:function``, default ``emberwatch.operations.manage_champion:promote`` / ``:rollback``). They are called in
  a worker thread with whichever of ``model_name``/``model``, ``version``, ``requested_by`` they
  accept. A setting naming a function that cannot be imported raises :class:`NotWired`; nothing
  changes.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from collections.abc import Callable
from typing import Any

from services.notifier.bot_commands import ChampionInfo, NotWired, PartStatus
from services.notifier.settings import NotifierSettings


def resolve_callable(spec: str) -> Callable[..., Any]:
    """``module:function`` → the function, or :class:`NotWired` saying what is missing."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise NotWired(f"{spec!r} is not of the form module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise NotWired(f"module {module_name} is not available ({exc.__class__.__name__})") from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise NotWired(f"{module_name} has no {attr}() yet")
    return func


def call_with_accepted(func: Callable[..., Any], **candidates: Any) -> Any:
    """Call ``func`` with the keyword arguments it declares among ``candidates``."""
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return func(**candidates)
    return func(**{k: v for k, v in candidates.items() if k in params})


class LocalOperations:
    def __init__(self, settings: NotifierSettings) -> None:
        self.settings = settings

    async def stack_status(self) -> list[PartStatus]:
        from emberwatch.stack import manage

        parts = await asyncio.to_thread(manage.status, self.settings)
        return [PartStatus(p.name, p.state, p.address) for p in parts]

    async def champion(self, model_name: str) -> ChampionInfo | None:
        return await asyncio.to_thread(self._champion, model_name)

    def _champion(self, model_name: str) -> ChampionInfo | None:
        from mlflow import MlflowClient
        from mlflow.exceptions import MlflowException

        client = MlflowClient(tracking_uri=self.settings.mlflow_tracking_uri,
                              registry_uri=self.settings.mlflow_tracking_uri)
        try:
            mv = client.get_model_version_by_alias(model_name, "champion")
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise
        return ChampionInfo(model_name=model_name, version=str(mv.version), run_id=mv.run_id,
                            source=mv.source, aliases=tuple(sorted(mv.aliases or ())),
                            description=mv.description)

    async def promote(self, model_name: str, version: str, *, requested_by: str) -> str:
        func = resolve_callable(self.settings.notifier_promote_callable)
        result = await asyncio.to_thread(call_with_accepted, func, model_name=model_name, model=model_name,
                                         version=version, requested_by=requested_by)
        return str(result) if result is not None else "done"

    async def rollback(self, model_name: str, *, requested_by: str) -> str:
        func = resolve_callable(self.settings.notifier_rollback_callable)
        result = await asyncio.to_thread(call_with_accepted, func, model_name=model_name, model=model_name,
                                         requested_by=requested_by)
        return str(result) if result is not None else "done"
