"""Where the repository is: the root its data files (triton_models/, monitoring/) are found from."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
