"""Load test of the portal's search on loopback with wrk, the catalog holding 100k files.

    .venv/bin/python bench/portal_load.py [--files 100000] [--datasets 200] [--duration 10]

Fills a fresh SQLite catalog (bulk inserts) with ``--datasets`` datasets, their facet rows
and ``--files`` File records spread over them, starts ``npfm portal serve`` (one uvicorn
process) on 127.0.0.1, and runs Debian's wrk (``--latency``, 2 threads, 16 connections,
``--duration`` seconds) against:
  * the API search: full text plus a facet filter, with facet counts and file totals;
  * the HTML search page with the same query;
  * the API's semantic search (cosine against the dataset embeddings precomputed in the
    search index; the model is loaded before timing starts).
Before each wrk run one request is timed alone: the first reply after a catalog change,
computed in full (no cached reply). wrk then measures repeated searches, which the
portal answers from its reply cache. Prints that first reply's time, and requests/s
and the p50/p99 latency (ms) under load.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from sqlalchemy import insert, select

from npfm.catalog import search_index
from npfm.catalog.facets import normalise
from npfm.catalog.models import Dataset, DatasetFacet, File, open_catalog

WRK = "/usr/bin/wrk"
# (facility, experiment, collision system, sqrt(s) in GeV, detector)
KINDS = (("RHIC", "sPHENIX", "pp", 200.0, "sphenix"), ("RHIC", "sPHENIX", "AuAu", 200.0,
         "sphenix"), ("LEP", "ALEPH", "e+e-", 91.2, "aleph"), ("LEP", "DELPHI", "e+e-",
         91.2, "delphi"), ("LEP", "OPAL", "e+e-", 189.0, "opal"), ("HERA", "ZEUS", "ep",
         318.0, "zeus"), ("EIC", "ePIC", "ep", 140.7, "epic"), ("LHC", "ALICE", "PbPb",
         5360.0, "alice"))
LICENSE = "https://creativecommons.org/licenses/by/4.0/"


def fill(url: str, n_datasets: int, n_files: int, root: Path) -> None:
    """Bulk-insert datasets, their facet rows and ``n_files`` files round-robin."""
    sessions = open_catalog(url)
    with sessions() as session:
        rows = []
        for i in range(n_datasets):
            facility, experiment, system, energy, detector = KINDS[i % len(KINDS)]
            rows.append({
                "name": f"{experiment.lower()}-{i}", "title": f"{experiment} {system} "
                f"collisions at {energy:g} GeV, sample {i}", "identifier": f"urn:bench:{i}",
                "schema_version": 1, "events": 1000, "hits": 850_000, "license": LICENSE,
                "creators": [], "created": "2026-11-22T00:00:00+00:00",
                "path": str(root), "manifest_sha256": hashlib.sha256(b"%d" % i).hexdigest(),
                "description": f"Simulated {experiment} {system} events at {facility} with "
                f"tracking detector hits and truth tracks, sample {i}.",
                "facility": facility, "experiment": experiment, "collision_system": system,
                "energy_gev": energy, "detector": detector, "data_level": "simulated",
                "keywords": ["tracking", experiment], "source": "npfm", "record": {}})
        session.execute(insert(Dataset), rows)
        ids = list(session.scalars(select(Dataset.id).order_by(Dataset.id)))
        facets = []
        for i, dataset_id in enumerate(ids):
            facility, experiment, system, energy, detector = KINDS[i % len(KINDS)]
            for name, value in (("facility", facility), ("experiment", experiment),
                                ("collision_system", system), ("energy_gev", f"{energy:g}"),
                                ("detector", detector), ("data_level", "simulated"),
                                ("license", normalise("license", LICENSE))):
                facets.append({"dataset_id": dataset_id, "facet": name, "value": value})
        session.execute(insert(DatasetFacet), facets)
        session.execute(insert(File), [
            {"dataset_id": ids[k % len(ids)], "path": f"shards/part-{k:06d}.parquet",
             "sha256": hashlib.sha256(b"%d" % k).hexdigest(), "bytes": 50_000_000,
             "events": 1000, "adler32": f"{k:08x}"} for k in range(n_files)])
        search_index.refresh(session, set(ids))  # bulk inserts bypass the flush hook
        session.commit()
    sessions.kw["bind"].dispose()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=timeout_s) as response:
                if response.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def run_wrk(url: str, duration: int, threads: int, connections: int) -> dict[str, float]:
    """wrk's requests/s and p50/p99 latency (ms); non-2xx answers or socket errors (a
    request slower than 30 s included) make it fail."""
    out = subprocess.run([WRK, f"-t{threads}", f"-c{connections}", f"-d{duration}s",
                          "--timeout", "30s", "--latency", url], capture_output=True,
                         text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rate is None or total is None or len(latency) != 2:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return {"rps": float(rate.group(1)), "p50": _ms(latency["50"]),
            "p99": _ms(latency["99"]), "requests": float(total.group(1))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/catalog.sqlite"
        start = time.perf_counter()
        fill(url, args.datasets, args.files, Path(tmp))
        print(f"catalog: {args.datasets} datasets, {args.files} files "
              f"({time.perf_counter() - start:.1f} s to fill); {os.cpu_count()} CPUs, load "
              f"average {os.getloadavg()[0]:.1f}")
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "npfm", "portal", "serve", "--db",
                                   url, "--port", str(port), "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        targets = {"API search": "/api/v1/search?q=tracking+collisions&experiment=sPHENIX",
                   "HTML search page": "/?q=tracking+collisions&experiment=sPHENIX",
                   "semantic search": "/api/v1/search?q=heavy+ion+tracking&mode=semantic"}
        try:
            wait_until_up(base + "/api/v1/search")
            wait_until_up(base + "/api/v1/search?q=model+loading&mode=semantic", 300)
            for name, path in targets.items():
                start = time.perf_counter()
                wait_until_up(base + path)
                first = (time.perf_counter() - start) * 1e3
                stats = run_wrk(base + path, args.duration, args.threads, args.connections)
                print(f"{name:17s} {path}: first reply {first:.0f} ms; {stats['rps']:.1f} "
                      f"requests/s, p50 {stats['p50']:.1f} ms, p99 {stats['p99']:.1f} ms "
                      f"({stats['requests']:.0f} requests)")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
