"""``gatedrec study``: studies of trained runs."""

from __future__ import annotations

from pathlib import Path

from gatedrec.commands.output import results
from gatedrec.studies.gates import study_gates


def gates(args) -> None:
    out = Path(args.out)
    result = study_gates(Path(args.run), out)
    written = ", ".join(sorted(path.name for path in out.iterdir()))
    stats = result["distribution"][result["modalities"][0]]
    results.print(f"{result['modalities'][0]} share over {result['items']:,} items: mean {stats['mean']:.4f}, "
                  f"std {stats['std']:.4f}, from {stats['min']:.4f} to {stats['max']:.4f}")
    results.print(f"wrote {out}: {written}")
