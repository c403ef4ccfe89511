"""The split configuration is pinned in the state: a changed setting must never move a cell.

A tile's split is the hash of its cell under the cell size, the val/test shares and the salt
(``services/tiler/assign_split.py``). Change any of them and tiles already announced keep their old
split while new tiles of the same cell get a new one: one cell in two splits, test ground in training.
So the first start writes them to ``<state_dir>/tiler/split.json``, and a later start whose settings
differ refuses to start, naming the file and the settings that differ.
"""

from __future__ import annotations

import json
from pathlib import Path

from emberwatch.common.atomic_files import atomic_write_text
from services.tiler.assign_split import SALT

SETTING_NAMES = {"cell_deg": "EMBERWATCH_TILER_SPLIT_CELL_DEG", "val": "EMBERWATCH_TILER_SPLIT_VAL",
                 "test": "EMBERWATCH_TILER_SPLIT_TEST", "salt": "the split salt (assign_split.SALT)"}


class SplitSettingsChanged(SystemExit):
    """The tiler refuses to start: its split settings differ from those pinned in the state."""


def split_config(cell_deg: float, val: float, test: float, salt: str = SALT) -> dict:
    return {"cell_deg": cell_deg, "val": val, "test": test, "salt": salt}


def pin_split(path: Path, config: dict) -> dict:
    """Write ``config`` to ``path`` on first start; afterwards check it. Returns the pinned config.

    Raises :class:`SplitSettingsChanged` (a one-line message) when a setting differs."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(config, indent=2, sort_keys=True) + "\n")
        return dict(config)
    try:
        pinned = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SplitSettingsChanged(f"tiler: cannot read the pinned split settings in {path} ({exc}); "
                                   "restore the file, or start with a new EMBERWATCH_STATE_DIR") from None
    diffs = [f"{SETTING_NAMES.get(k, k)} is {config.get(k)!r}, pinned {pinned.get(k)!r}"
             for k in sorted(set(config) | set(pinned)) if config.get(k) != pinned.get(k)]
    if diffs:
        raise SplitSettingsChanged(
            f"tiler: the split settings differ from those pinned in {path} ({'; '.join(diffs)}): a changed "
            "setting would put one cell in two splits; restore the settings, or start with a new "
            "EMBERWATCH_STATE_DIR (new tiles, new splits)")
    return pinned
