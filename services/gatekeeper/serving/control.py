"""What Triton serves: heads placed and loaded, the champion switched without downtime.

Order of every change (docs/architecture.md#serving-never-goes-dark): write the repository on disk,
then ask Triton to load; a new
champion answers before the old one may be unloaded; a retired head is unloaded only after the
champion has moved away from it (plus a grace period for requests in flight).
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emberwatch.common.triton_client import Triton, TritonError, png_bytes
from emberwatch.ml.backbone import EMBEDDING_DIM
from services.gatekeeper.serving import repository as repo_files
from services.gatekeeper.settings import GatekeeperSettings
from services.gatekeeper.validate_candidate import tolerance_for

log = logging.getLogger(__name__)


@contextmanager
def state_lock(settings: GatekeeperSettings) -> Iterator[None]:
    """One writer at a time: the handlers (candidates, tiles, commands) and the serving check."""
    settings.gatekeeper_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.gatekeeper_dir / "lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class ServingControl:
    def __init__(self, settings: GatekeeperSettings, triton: Triton | None = None):
        self.settings = settings
        self.repo = Path(settings.triton_model_repository)
        # with the key of the model-repository API (EMBERWATCH_TRITON_ADMIN_KEY): a deployed Triton
        # answers load and unload only to it
        self.triton = triton or Triton(settings.triton_url, model=settings.gatekeeper_triton_model,
                                       timeout_s=settings.gatekeeper_triton_timeout_s,
                                       admin_key=settings.triton_admin_key)
        self.models = repo_files.LineModels.for_product(settings.product)  # this line's Triton models
        repo_files.install_templates(self.repo, settings.triton_backbone_runtime, self.models)

    def roles(self) -> dict[str, str | None]:
        return repo_files.read_serving(self.repo, self.models)

    def champion(self) -> str | None:
        return self.roles()["champion"]

    # --- backbone ----------------------------------------------------------------------------
    def backbone(self) -> dict | None:
        return repo_files.backbone_meta(self.repo, self.models)

    def validation_tolerance(self) -> float:
        """Infra validation's tolerance for the precision the backbone is served at."""
        return tolerance_for((self.backbone() or {}).get("precision"), self.settings.gatekeeper_validation_tolerance)

    def ensure_backbone(self, head_meta: dict, shipped: Path | None = None,
                        calibration: Path | None = None) -> list[str]:
        """The backbone the head was trained on, in the repository and loaded. Problems if impossible.

        ``shipped``: a backbone folder that came with the candidate (the trainer's fine-tuning option
        exports ``triton/backbone/``); otherwise the gatekeeper exports the shared frozen backbone
        itself. Champion and challenger share one backbone, so a head on another backbone than the
        champion's cannot be shadowed: it is refused with the reason."""
        current = self.backbone()
        wanted_id = head_meta.get("backbone_id")
        if current is None or current.get("backbone_id") != wanted_id:
            if current is not None and self.champion() is not None:
                return [f"head was trained on backbone {wanted_id}, but the champion is served on "
                        f"{current.get('backbone_id')}; champion and challenger must share one backbone"]
            shipped_meta = None
            if shipped is not None and (shipped / "backbone.json").is_file():
                shipped_meta = json.loads((shipped / "backbone.json").read_text())
            if shipped_meta is not None and shipped_meta.get("backbone_id") == wanted_id:
                repo_files.install_backbone(self.repo, shipped, self.settings.triton_backbone_runtime,
                                            self.models)
            else:
                problems = self._export_backbone(head_meta, calibration)
                if problems:
                    return problems
            self.triton.load(self.models.backbone)
        elif not self.triton.ready(self.models.backbone):
            self.triton.load(self.models.backbone)
        return []

    def _export_backbone(self, head_meta: dict, calibration: Path | None = None) -> list[str]:
        import tempfile

        from emberwatch.ml.backbone import backbone_root, export_backbone_onnx, load_backbone

        ml = self.settings.model_copy(update={"image_size": int(head_meta["image_size"])})
        backbone = load_backbone(ml)
        if backbone.backbone_id != head_meta.get("backbone_id"):
            return [f"head was trained on backbone {head_meta.get('backbone_id')}, the gatekeeper "
                    f"builds {backbone.backbone_id} from its settings (EMBERWATCH_BACKBONE_*)"]
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="backbone-onnx-", dir=self.settings.gatekeeper_dir) as tmp:
            exported = export_backbone_onnx(backbone, Path(tmp) / "onnx", cache_root=backbone_root(ml))
            if self.settings.triton_backbone_runtime == "openvino-cpu-int8":
                exported = self._quantize(exported, Path(tmp) / "int8", calibration)
            repo_files.install_backbone(self.repo, exported, self.settings.triton_backbone_runtime, self.models)
        log.info("backbone exported to the Triton repository (ONNX)",
                 extra={"backbone_id": backbone.backbone_id, "runtime": self.settings.triton_backbone_runtime,
                        "seconds": round(time.monotonic() - started, 1)})
        return []

    @staticmethod
    def _quantize(exported: Path, out: Path, calibration: Path | None) -> Path:
        """The INT8 IR of the exported backbone, calibrated on the candidate's training tiles; the FP32
        ONNX (with a warning) when the candidate carries none or quantisation fails: serving goes on."""
        import numpy as np

        from emberwatch.ml.quantize_backbone import quantize_backbone_int8

        if calibration is None or not calibration.is_file():
            log.warning("INT8 asked, but the candidate carries no calibration tiles (triton/calibration.npz): "
                        "serving the backbone at FP32")
            return exported
        try:
            with np.load(calibration) as data:
                images = np.asarray(data["images"])
            return quantize_backbone_int8(exported, images, out)
        except Exception as exc:  # noqa: BLE001 - FP32 serves correctly; INT8 is an optimisation
            log.warning("INT8 quantisation failed: serving the backbone at FP32",
                        extra={"error": f"{type(exc).__name__}: {exc}"[:500]})
            return exported

    # --- heads -------------------------------------------------------------------------------
    def keep_versions(self, *extra: str | None) -> list[int]:
        roles = self.roles()
        wanted = {roles["champion"], roles["previous"], roles["challenger"], *extra}
        on_disk = set(repo_files.head_versions_on_disk(self.repo, self.models))
        return sorted(int(v) for v in wanted if v is not None and int(v) in on_disk)

    def apply_head_versions(self, versions: list[int]) -> None:
        """Write the head's version list, then (re)load it: Triton loads/unloads the difference."""
        embedding_dim = int((self.backbone() or {}).get("embedding_dim", EMBEDDING_DIM))
        if not versions:
            return
        repo_files.write_head_config(self.repo, versions, embedding_dim, self.models)
        self.triton.load(self.models.head)

    def add_head(self, version: str, source: Path) -> None:
        """Place and load a head version next to the ones serving. Raises TritonError on failure
        (the failed version is removed again; the others keep serving)."""
        repo_files.place_head(self.repo, version, source, self.models)
        try:
            self.apply_head_versions(self.keep_versions(version))
            if not self.triton.ready(self.models.head, version):
                raise TritonError(f"head version {version} did not become ready")
            if not self.triton.ready(self.settings.gatekeeper_triton_model):
                self.triton.load(self.settings.gatekeeper_triton_model)
        except TritonError:
            self.drop_head(version)
            raise

    def drop_head(self, version: str) -> None:
        """Unload and delete a head version that serves no role."""
        roles = self.roles()
        if str(version) in roles.values():
            raise ValueError(f"head version {version} still has a role: {roles}")
        keep = [v for v in self.keep_versions() if v != int(version)]
        repo_files.remove_head(self.repo, version, self.models)
        if keep:
            self.apply_head_versions(keep)

    def ensure_loaded(self) -> bool:
        """After a restart of Triton: load backbone, the heads with a role, and the BLS model.
        Returns whether anything had to be loaded."""
        loaded = False
        if self.backbone() is not None and not self.triton.ready(self.models.backbone):
            self.triton.load(self.models.backbone)
            loaded = True
        keep = self.keep_versions()
        if keep and any(not self.triton.ready(self.models.head, str(v)) for v in keep):
            self.apply_head_versions(keep)
            loaded = True
        if not self.triton.ready(self.settings.gatekeeper_triton_model):
            self.triton.load(self.settings.gatekeeper_triton_model)
            loaded = True
        return loaded

    def wait_until_serving(self, timeout_s: float, poll_s: float = 1.0) -> None:
        """Block until Triton answers and serves what the repository says (re-loading it after a
        restart). A Triton restart is an expected event, logged once at info level; only a Triton
        that stays away for ``timeout_s`` raises ``TritonError`` (and the message is retried)."""
        deadline = time.monotonic() + timeout_s
        waited = False
        while True:
            if self.triton.live():
                if self.ensure_loaded() or waited:
                    log.info("Triton is back; served models re-loaded", extra={"roles": self.roles()})
                return
            if not waited:
                log.info("Triton is not reachable; waiting for it", extra={"url": self.settings.triton_url,
                                                                            "timeout_s": timeout_s})
                waited = True
            if time.monotonic() >= deadline:
                raise TritonError(f"Triton at {self.settings.triton_url} did not come back within {timeout_s:.0f}s")
            time.sleep(poll_s)

    # --- roles -------------------------------------------------------------------------------
    def set_challenger(self, version: str | None) -> None:
        repo_files.write_serving(self.repo, self.models, challenger=version)
        if version is not None and not self.triton.ready(self.settings.gatekeeper_triton_model):
            self.triton.load(self.settings.gatekeeper_triton_model)

    def switch_champion(self, version: str, *, previous: str | None) -> None:
        """Make ``version`` (loaded) the champion; returns once ``wildfire`` answers with it."""
        if not self.triton.ready(self.models.head, version):
            raise TritonError(f"head version {version} is not loaded; refusing to make it champion")
        if not self.triton.ready(self.settings.gatekeeper_triton_model):
            self.triton.load(self.settings.gatekeeper_triton_model)
        roles = self.roles()
        challenger = roles["challenger"] if roles["challenger"] != str(version) else None
        repo_files.write_serving(self.repo, self.models, champion=version, previous=previous, challenger=challenger)
        self._wait_answers(version)

    def _wait_answers(self, version: str, timeout_s: float = 30.0) -> None:
        import numpy as np

        size = int((self.backbone() or {}).get("image_size", 224))
        probe = png_bytes(np.full((size, size, 3), 127, dtype=np.uint8))
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            try:
                last = self.triton.score_bytes([probe], "champion").versions
                if last == [str(version)]:
                    return
            except TritonError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise TritonError(f"champion {version} did not answer within {timeout_s}s (last: {last})")

    def retire_unused(self) -> None:
        """Unload and delete heads that no longer have a role (after a grace period)."""
        keep = set(self.keep_versions())
        stale = [v for v in repo_files.head_versions_on_disk(self.repo, self.models) if v not in keep]
        if not stale:
            return
        time.sleep(self.settings.gatekeeper_unload_grace_s)
        if keep:
            self.apply_head_versions(sorted(keep))
        for v in stale:
            repo_files.remove_head(self.repo, v, self.models)
