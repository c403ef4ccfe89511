"""Paths under a known root, from names that may have come from outside (an event, an HTTP request).

``child_path(root, *parts)`` is the one way a service turns such a name into a path: each part is one
plain name (not absolute, no separator, not ``.`` or ``..``, no NUL, not empty), and the result,
resolved (symlinks followed), must still lie under the resolved root. Anything else raises
``UnsafePath`` before any file is touched.
"""

from __future__ import annotations

import os
from pathlib import Path

_SEPARATORS = ("/", "\\", "\x00")


class UnsafePath(ValueError):
    """A name that would leave its root (or is no plain name at all)."""


def child_path(root: Path, *parts: str) -> Path:
    """``root / parts[0] / parts[1] ...``, refused unless every part is one plain name and the path,
    resolved, stays under ``root`` resolved. ``root`` itself is trusted (it comes from settings)."""
    if not parts:
        raise UnsafePath("no name given under the root")
    for part in parts:
        if not isinstance(part, str) or not part or part in (".", "..") \
                or any(s in part for s in _SEPARATORS) or os.path.isabs(part):
            raise UnsafePath(f"not a plain file name: {str(part)[:80]!r}")
    base = Path(root).resolve()
    path = base.joinpath(*parts)
    resolved = path.resolve()
    if not resolved.is_relative_to(base) or resolved == base:
        raise UnsafePath(f"{'/'.join(parts)[:120]!r} leaves {base}")
    return path
