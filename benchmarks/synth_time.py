"""`tillit synth` wall time for a municipality, against the floor of writing the same tables.

The baseline, measured in the same run, is writing the generated tables to Parquet again (no
generation at all): the ratio says how much of synth is generation rather than I/O.
Run:  ``.venv/bin/python -m benchmarks.synth_time [--residents N]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks._common import row
from schemas.synth import SynthConfig, synthesize


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--residents", type=int, default=300_000)
    parser.add_argument("--municipalities", default="espoo")
    args = parser.parse_args()
    municipalities = tuple(args.municipalities.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synth"
        result = synthesize(SynthConfig(out=out, residents=args.residents, municipalities=municipalities, seed=1))
        tables = {path: pq.read_table(path) for files in result.files.values() for path in files.values()}
        started = time.perf_counter()
        for path, table in tables.items():
            pq.write_table(table, Path(tmp) / path.name, compression="zstd")
        floor = time.perf_counter() - started
        rows = sum(t.num_rows for t in tables.values())
        size = sum(p.stat().st_size for p in tables)
    print(f"tillit synth: {len(municipalities)} municipality(ies) x {args.residents:,} residents, "
          f"{rows:,} rows in {len(tables)} silos, {size / 1e6:.0f} MB Parquet")
    print(row("write the same tables to Parquet (baseline)", floor))
    print(row("tillit synth (generate + write + truth.json)", result.seconds, floor))
    print(f"  goal: well under 60 s for 300,000 residents -> {result.seconds:.1f} s")


if __name__ == "__main__":
    main()
