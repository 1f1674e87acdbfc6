"""Writing Spark results into the workspace: Parquet part files that Spark writes under a directory no
committed state names yet, listed afterwards (with the transaction range of each file from its Parquet
statistics) so that a state file can name them and commit them atomically."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame


def write_ordered(df: "DataFrame", path: Path, key: str, order: list[str], partitions: int) -> None:
    """Write `df` range-partitioned on `key` and sorted by `order` within each file: file i holds smaller
    keys than file i+1, so the files read in name order are in `order`."""
    (df.repartitionByRange(max(1, partitions), key).sortWithinPartitions(*order)
     .write.mode("overwrite").parquet(str(path)))


def part_files(path: Path) -> list[Path]:
    """The non-empty Parquet part files Spark wrote under `path`, in name order (Spark's .crc and marker
    files are left for the store's cleanup)."""
    out = []
    for p in sorted(Path(path).glob("part-*.parquet")):
        if pq.ParquetFile(p).metadata.num_rows:
            out.append(p)
        else:
            p.unlink()
    return out


def key_range(p: Path, column: str) -> tuple[int, int]:
    """(min, max) of an integer column of a Parquet file, from its row-group statistics."""
    md = pq.ParquetFile(p).metadata
    i = md.schema.to_arrow_schema().get_field_index(column)
    lo = min(md.row_group(g).column(i).statistics.min for g in range(md.num_row_groups))
    hi = max(md.row_group(g).column(i).statistics.max for g in range(md.num_row_groups))
    return int(lo), int(hi)


def tiled(files: list[Path], root: Path, column: str, n: int) -> list[dict]:
    """State entries ``{file, rows, lo, hi}`` for files ordered by `column` whose ranges tile 0..n-1."""
    out: list[dict] = []
    for p in files:
        lo, _ = key_range(p, column)
        if out:
            out[-1]["hi"] = lo
        out.append({"file": p.relative_to(root).as_posix(), "rows": pq.ParquetFile(p).metadata.num_rows,
                    "lo": 0 if not out else lo, "hi": n})
    return out
