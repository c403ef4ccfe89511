"""The split configuration is pinned: a changed setting must never move a cell.

A tile's split is the hash of its cell under the cell size, the val/test shares and the salt
(``services/tiler/assign_split.py``). Change any of them and tiles already announced keep their old
split while new tiles of the same cell get a new one: one cell in two splits, test ground in training.
So the first tiler to start writes them to the coordination database (one pin for every replica),
and a later start whose settings differ refuses to start, naming the settings that differ. A pin an
older tiler wrote to ``<state_dir>/tiler/split.json`` is taken over on the first start.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import Column, Engine, String, Table, Text, select

from emberwatch.common.coordination import METADATA, insert_or_keep
from services.tiler.assign_split import SALT

SETTING_NAMES = {"cell_deg": "EMBERWATCH_TILER_SPLIT_CELL_DEG", "val": "EMBERWATCH_TILER_SPLIT_VAL",
                 "test": "EMBERWATCH_TILER_SPLIT_TEST", "salt": "the split salt (assign_split.SALT)"}
PINS = Table(
    "tiler_pins", METADATA,
    Column("name", String, primary_key=True),
    Column("config", Text, nullable=False),  # JSON
)


class SplitSettingsChanged(SystemExit):
    """The tiler refuses to start: its split settings differ from those pinned."""


def split_config(cell_deg: float, val: float, test: float, salt: str = SALT) -> dict:
    return {"cell_deg": cell_deg, "val": val, "test": test, "salt": salt}


def pin_split(engine: Engine, config: dict, old_file: Path | None = None) -> dict:
    """Pin ``config`` on first start (or the one in ``old_file``, an older tiler's); afterwards check
    it. Returns the pinned config. Raises :class:`SplitSettingsChanged` (a one-line message) when a
    setting differs."""
    first = dict(config)
    if old_file is not None and Path(old_file).exists():
        try:
            first = json.loads(Path(old_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SplitSettingsChanged(f"tiler: cannot read the pinned split settings in {old_file} ({exc}); "
                                       "restore the file, or start with a new EMBERWATCH_STATE_DIR") from None
    insert_or_keep(engine, PINS, [{"name": "split", "config": json.dumps(first, sort_keys=True)}])
    with engine.connect() as conn:
        pinned = json.loads(conn.execute(select(PINS.c.config).where(PINS.c.name == "split")).scalar_one())
    diffs = [f"{SETTING_NAMES.get(k, k)} is {config.get(k)!r}, pinned {pinned.get(k)!r}"
             for k in sorted(set(config) | set(pinned)) if config.get(k) != pinned.get(k)]
    if diffs:
        raise SplitSettingsChanged(
            f"tiler: the split settings differ from those pinned in the coordination database "
            f"({'; '.join(diffs)}): a changed setting would put one cell in two splits; restore the "
            "settings, or start with a new EMBERWATCH_STATE_DIR and coordination database (new tiles, "
            "new splits)")
    return pinned
