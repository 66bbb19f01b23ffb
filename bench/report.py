"""``python -m bench.report [results.json]``: the results table in Markdown (for the README),
with the notes and target verdicts; defaults to bench/results/latest.json."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench import stats
from bench.run import RESULTS


def markdown(results: dict) -> str:
    lines = [stats.markdown_table(results["rows"]), ""]
    lines += [f"- {r['scenario']}, {r['measure']}: {r['note']}" for r in results["rows"] if r.get("note")]
    lines += [f"- target: {t}" for t in results.get("targets", [])]
    m = results.get("machine", {})
    lines.append(f"- run: {results.get('started', '?')}, {m.get('cpus', '?')} CPUs, Python {m.get('python', '?')}, "
                 f"{m.get('jenkins-jobs', '?')}, dindjobs {results.get('commit', '?')}, {results.get('total_seconds', '?')} s "
                 f"in all{' (quick)' if results.get('quick') else ''}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else RESULTS / "latest.json"
    print(markdown(json.loads(path.read_text(encoding="utf-8"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
