"""The fault tests generate job trees with bench/gen.py, which lives at the repository root."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
