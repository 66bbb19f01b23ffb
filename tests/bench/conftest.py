"""The benchmark scripts live in bench/ at the repository root, outside the package."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
