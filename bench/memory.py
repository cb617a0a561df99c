"""Benchmark 4: peak memory of `Dataset.save()` streaming 50 frames vs saving one frame.

Worker: `python -m bench.memory WORK_DIR FRAMES` saves a generator of FRAMES DataFrames of
100,000 rows into a fresh dataset and prints the process's peak RSS (the larger of a psutil
polling thread, every 5 ms, and `getrusage` maxrss) as JSON. Each run is a fresh process.
"""

import os
import resource
import sys
import threading
import time

from bench.common import emit, quiet_logs
from bench.data import frame, write_project

FRAME_ROWS = 100_000

MANIFEST = """\
project:
  name: bench_memory
destinations:
  warehouse:
    type: duckdb
datasets:
  stream:
    destination: [warehouse]
"""


class PeakRss:
    """Polls this process's RSS in a thread; `.peak` is the largest value seen (bytes)."""

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(interval,), daemon=True)
        self._thread.start()

    def _poll(self, interval: float) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        return max(self.peak, maxrss)


def main(work: str, frames: int) -> None:
    quiet_logs()
    from dltplus_dagster import current

    project_dir = write_project(os.path.join(work, f"project_memory_{frames}"), MANIFEST, {})
    ds = current.catalog(project_dir).dataset("stream")
    db = os.path.join(current.project(project_dir).local_dir, "warehouse.duckdb")
    if os.path.exists(db):
        os.remove(db)
    frame(10)  # import pandas/pyarrow/numpy before the baseline
    import psutil

    baseline = psutil.Process().memory_info().rss
    meter = PeakRss()
    t0 = time.perf_counter()
    ds.save((frame(FRAME_ROWS, seed=i) for i in range(frames)), table_name="rows",
            write_disposition="replace")
    elapsed = time.perf_counter() - t0
    peak = meter.stop()
    rows = ds.row_counts(table_names=["rows"])["rows"]
    assert rows == frames * FRAME_ROWS, rows
    emit({"frames": frames, "rows": rows, "peak_rss": peak, "baseline_rss": baseline,
          "seconds": elapsed})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
