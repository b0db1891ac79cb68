"""Load test of the portal's search on loopback with wrk, the catalog holding 100k files.

    .venv/bin/python bench/portal_load.py [--datasets 200] [--duration 10] [--catalog F]

Fills a fresh SQLite catalog (bulk inserts) with ``--datasets`` datasets, their facet rows
and ``--files`` File records spread over them (or reuses the ``--catalog`` file an earlier
run filled), starts ``npfm portal serve`` (one uvicorn process) on 127.0.0.1, and runs
Debian's wrk (``--latency``, 2 threads, 16 connections, ``--duration`` seconds) against:
  * the API search: full text plus a facet filter, with facet counts and file totals;
  * the HTML search page with the same query;
  * the API's semantic search (cosine against the dataset embeddings precomputed in the
    search index; the model is loaded before timing starts).
Each target is measured twice: ``repeated``, one query over and over (answered from the
reply cache after the first), and ``distinct``, a wrk script sending 20,000 different
queries of the catalog's vocabulary in turn (``distinct_paths``), so that no reply is
found in the cache. Prints the time of the first search after the catalog changed (it
builds the in-memory facet index), of each target's first reply, and requests/s and the
p50/p99 latency (ms) of each run with the load average before it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
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
#: Words of the bench catalog's titles and descriptions, and a few that match nothing.
WORDS = ("collisions", "tracking", "tracks", "detector", "hits", "truth", "simulated",
         "events", "sample", "GeV", "heavy", "ion", "electron", "proton", "lattice",
         "calorimeter", "neutrino")
#: Distinct queries per mode: more than the reply cache (2048) and the query-embedding
#: cache (4096) hold, so that no reply or query vector of the list is found again.
DISTINCT = 20_000
#: wrk script: each thread walks its own share of the paths in ``PATHS``.
LUA = """local paths = {%s}
local counter = 0
function setup(thread) thread:set("first", counter); counter = counter + 1 end
function init(args) i = tonumber(first) end
function request() i = i + %d; return wrk.format(nil, paths[(i %% #paths) + 1]) end
"""


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


def distinct_paths(kind: str, n: int, n_datasets: int = 200, seed: int = 0) -> list[str]:
    """``n`` different search paths of ``kind`` (``api``, ``html``, ``semantic``): one to
    three words of the catalog's vocabulary (experiments, systems, facilities, energies,
    sample numbers, words that match nothing), a facet filter in half of them (two in a
    tenth), a later page in a fifth."""
    rng = random.Random(seed)
    vocabulary = [*WORDS, *{w for kind_ in KINDS for w in map(str, kind_[:3])},
                  *{f"{k[3]:g}" for k in KINDS}]
    facets = [("experiment", 1), ("collision_system", 2), ("facility", 0), ("detector", 4)]
    found: dict[str, None] = {}
    while len(found) < n:
        words = rng.sample(vocabulary, rng.randint(1, 3))
        if rng.random() < 0.3:
            words.append(str(rng.randrange(n_datasets)))
        params = [("q", " ".join(words))]
        for _ in range(1 if rng.random() < 0.5 else 2 if rng.random() < 0.2 else 0):
            name, column = rng.choice(facets)
            params.append((name, str(rng.choice(KINDS)[column])))
        if rng.random() < 0.2:
            params.append(("offset", str(rng.choice((20, 40)))))
        if kind == "semantic":
            params.append(("mode", "semantic"))
        prefix = "/?" if kind == "html" else "/api/v1/search?"
        found[prefix + urllib.parse.urlencode(params)] = None
    return list(found)


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


def run_wrk(url: str, duration: int, threads: int, connections: int,
            script: Path | None = None) -> dict[str, float]:
    """wrk's requests/s and p50/p99 latency (ms), with the Lua ``script`` if given;
    non-2xx answers or socket errors (a request slower than 30 s included) make it fail."""
    extra = ["-s", str(script)] if script else []
    out = subprocess.run([WRK, f"-t{threads}", f"-c{connections}", f"-d{duration}s",
                          "--timeout", "30s", "--latency", *extra, url],
                         capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors:\n{out}")
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.M))
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if rate is None or total is None or len(latency) != 2:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    return {"rps": float(rate.group(1)), "p50": _ms(latency["50"]),
            "p99": _ms(latency["99"]), "requests": float(total.group(1))}


def write_script(path: Path, paths: list[str], threads: int) -> Path:
    """A wrk script that sends ``paths`` in turn, thread k taking every ``threads``-th."""
    assert all(re.fullmatch(r"[\w/?=&%+.-]+", p) for p in paths)
    path.write_text(LUA % (", ".join(f'"{p}"' for p in paths), threads))
    return path


def report(name: str, mode: str, stats: dict[str, float]) -> None:
    print(f"{name:17s} {mode:9s} {stats['rps']:8.1f} requests/s, p50 {stats['p50']:7.1f} ms, "
          f"p99 {stats['p99']:7.1f} ms ({stats['requests']:.0f} requests, load average "
          f"{stats['load']:.1f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--datasets", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--catalog", type=Path, help="SQLite file to fill and keep, or to "
                        "reuse if it exists (filled by an earlier run with the same sizes)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.catalog or Path(tmp) / "catalog.sqlite"
        url = f"sqlite:///{db.resolve()}"
        start = time.perf_counter()
        if not db.exists():
            fill(url, args.datasets, args.files, Path(tmp))
        print(f"catalog: {args.datasets} datasets, {args.files} files "
              f"({time.perf_counter() - start:.1f} s to fill); {os.cpu_count()} CPUs, load "
              f"average {os.getloadavg()[0]:.1f}")
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "npfm", "portal", "serve", "--db",
                                   url, "--port", str(port), "--log-level", "warning"],
                                  stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        targets = {"API search": ("api", "/api/v1/search?q=tracking+collisions&"
                                         "experiment=sPHENIX"),
                   "HTML search page": ("html", "/?q=tracking+collisions&experiment=sPHENIX"),
                   "semantic search": ("semantic",
                                       "/api/v1/search?q=heavy+ion+tracking&mode=semantic")}
        wrk = (args.duration, args.threads, args.connections)
        try:
            wait_until_up(base + "/api/v1/docs")
            start = time.perf_counter()
            wait_until_up(base + "/api/v1/search")
            print(f"first search after a catalog change (builds the facet index): "
                  f"{(time.perf_counter() - start) * 1e3:.0f} ms", flush=True)
            wait_until_up(base + "/api/v1/search?q=model+loading&mode=semantic", 300)
            for seed, (name, (kind, path)) in enumerate(targets.items()):
                start = time.perf_counter()
                wait_until_up(base + path)
                print(f"{name:17s} {path}: first reply "
                      f"{(time.perf_counter() - start) * 1e3:.0f} ms", flush=True)
                load = os.getloadavg()[0]
                report(name, "repeated", {**run_wrk(base + path, *wrk), "load": load})
                paths = distinct_paths(kind, DISTINCT, args.datasets, seed)
                script = write_script(Path(tmp) / f"{kind}.lua", paths, args.threads)
                load = os.getloadavg()[0]
                report(name, "distinct", {**run_wrk(base + "/", *wrk, script), "load": load})
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
