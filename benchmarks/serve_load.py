"""Bounded load test of ``carrisk serve`` on 127.0.0.1: ``python -m benchmarks.serve_load [--quick]``.

Starts ``carrisk serve`` with the shipped model (its default limits, loopback only) in a subprocess on a free port,
then client threads, each on its own keep-alive HTTP connection, send ``POST /predict`` requests (see
:data:`FULL_PHASES`): 2,000 requests of 1 patient from 8 clients, 200 of 100 patients from 8 clients, 200 of 1
patient from one client alone, and 200 of 100 patients without reasons (``?top=0``); ``--quick``: 200, 20, 50, 20.
Every phase is bounded by its request count and by ``PHASE_TIME_LIMIT_S``, and the server is stopped at the end,
for each server size in ``--workers`` (default 1 and 2 processes). Reported per phase: throughput
(requests/s and patients/s), latency percentiles (p50/p90/p99/max, client-side, including JSON encoding and the
HTTP round trip), errors (any status other than 200, or a failed connection; must be zero) and the server's
resident memory (RSS) before and after. Patients are the bundled example records with a unique id per request.

The target address is fixed to 127.0.0.1: this script cannot be pointed at another machine. The machine's load
average is recorded at the start and the end, since other work running at the same time slows the server; the
server's CPU time per request (user + system, all its processes) is recorded too, because it does not depend on
that contention: ``1000 / server_cpu_ms_per_request`` is what one otherwise idle core would serve.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import psutil

from benchmarks import _common
from carrisk.bundle import read_manifest
from carrisk.provenance import package_versions
from carrisk.schema import OUTCOME_COLUMNS, read_records
from carrisk.shipped import default_model_path

HOST = "127.0.0.1"  # loopback only, by construction
CLIENTS = 8
#: (concurrent clients, patients per request, requests, reasons per patient): the load, then one client alone
#: for the latency of a request that does not queue behind others, then 100-patient requests without reasons
#: (``?top=0``: no SHAP), for clients that only need the numbers.
FULL_PHASES = ((CLIENTS, 1, 2000, 3), (CLIENTS, 100, 200, 3), (1, 1, 200, 3), (CLIENTS, 100, 200, 0))
QUICK_PHASES = ((CLIENTS, 1, 200, 3), (CLIENTS, 100, 20, 3), (1, 1, 50, 3), (CLIENTS, 100, 20, 0))
WARMUP_REQUESTS = 20
RSS_SAMPLE_S = 1.0
PHASE_TIME_LIMIT_S = 900.0
STARTUP_TIMEOUT_S = 300.0
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "carrisk" / "data" / "example_patients.csv"
TARGETS = {"p50_ms_1_patient": 30.0, "p99_ms_1_patient": 100.0, "patients_per_s_100": 1000.0}


def _patients() -> list[dict[str, Any]]:
    frame = read_records(EXAMPLES).drop(columns=list(OUTCOME_COLUMNS))
    return frame.astype(object).where(frame.notna(), None).to_dict("records")


def _body(patients: list[dict[str, Any]], size: int, request: int) -> bytes:
    chosen = [dict(patients[(request * size + i) % len(patients)], patient_id=f"R{request}-{i}") for i in range(size)]
    return json.dumps(chosen).encode()


def _model_served() -> dict[str, Any]:
    """Which bundle ``carrisk serve`` loads by default (models/default may be rebuilt between runs)."""
    manifest = read_manifest(default_model_path())
    return {
        "name": manifest["model"]["model"],
        "mode": manifest["model"].get("mode", "clinical"),
        "payload_sha256": manifest["payload"]["sha256"],
        "created": manifest.get("created"),
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _start_server(port: int, workers: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-c", "from carrisk.cli import app; app()", "serve", "--host", HOST, "--port", str(port)]
    command += ["--workers", str(workers)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{port}/health", timeout=2):
                return process
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("carrisk serve did not start") from None
            time.sleep(0.25)


def _cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time used so far by the server and its worker processes."""
    tree = [process, *process.children(recursive=True)]
    return sum(sum(p.cpu_times()[:2]) for p in tree)


def _rss_mb(process: psutil.Process) -> float:
    """Resident memory of the server and its worker processes."""
    tree = [process, *process.children(recursive=True)]
    return sum(p.memory_info().rss for p in tree) / 1e6


def _phase(
    port: int,
    server: psutil.Process,
    patients: list[dict[str, Any]],
    clients: int,
    size: int,
    requests: int,
    top: int = 3,
) -> dict[str, Any]:
    """Send ``requests`` requests of ``size`` patients from ``clients`` threads; time each one.

    The server's RSS is sampled every :data:`RSS_SAMPLE_S` seconds with the number of requests done by then.
    """
    bodies = [_body(patients, size, r) for r in range(min(requests, 50))]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_request = iter(range(requests))
    stop_at = time.monotonic() + PHASE_TIME_LIMIT_S

    def client() -> None:
        connection = http.client.HTTPConnection(HOST, port, timeout=120)
        headers = {"Content-Type": "application/json"}
        while time.monotonic() < stop_at:
            with lock:
                request = next(next_request, None)
            if request is None:
                break
            start = time.perf_counter()
            try:
                connection.request("POST", f"/predict?top={top}", body=bodies[request % len(bodies)], headers=headers)
                response = connection.getresponse()
                payload = response.read()
                ok = response.status == 200 and len(json.loads(payload)) == size
                problem = None if ok else f"status {response.status}"
            except (OSError, http.client.HTTPException, ValueError) as err:
                problem = type(err).__name__
                connection.close()
                connection = http.client.HTTPConnection(HOST, port, timeout=120)
            elapsed = time.perf_counter() - start
            with lock:
                latencies.append(elapsed)
                if problem:
                    errors.append(problem)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    samples: list[tuple[int, float]] = []
    cpu_before = _cpu_seconds(server)
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        samples.append((len(latencies), _rss_mb(server)))
        threads[0].join(RSS_SAMPLE_S)
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    cpu_ms = 1000 * (_cpu_seconds(server) - cpu_before) / max(1, len(latencies))
    samples.append((len(latencies), _rss_mb(server)))
    halfway = next(rss for done, rss in samples if done >= len(latencies) / 2)
    ms = sorted(1000 * s for s in latencies)

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))]

    return {
        "clients": clients,
        "patients_per_request": size,
        "top_reasons": top,
        "requests_planned": requests,
        "requests_sent": len(latencies),
        "errors": len(errors),
        "error_kinds": sorted(set(errors)),
        "wall_seconds": wall,
        # Server CPU per request does not depend on how busy the machine is; one process uses one core at most
        # (the GIL), so 1000 / cpu_ms_per_request is what one idle core would serve.
        "server_cpu_ms_per_request": cpu_ms,
        "server_cpu_ms_per_patient": cpu_ms / size,
        "idle_core_requests_per_s": 1000 / cpu_ms if cpu_ms > 0 else None,
        "idle_core_patients_per_s": 1000 * size / cpu_ms if cpu_ms > 0 else None,
        "rss_mb_samples": [{"requests_done": done, "rss_mb": rss} for done, rss in samples],
        "rss_mb_growth_second_half": samples[-1][1] - halfway,
        "requests_per_s": len(latencies) / wall,
        "patients_per_s": size * len(latencies) / wall,
        "latency_ms": {
            "p50": pct(0.50),
            "p90": pct(0.90),
            "p99": pct(0.99),
            "max": ms[-1],
            "mean": statistics.fmean(ms),
        },
    }


def _run_server_load(phases: tuple[tuple[int, int, int, int], ...], workers: int) -> dict[str, Any]:
    port = _free_port()
    _common.log(f"serve_load: starting carrisk serve --workers {workers} on {HOST}:{port}")
    run: dict[str, Any] = {"workers": workers, "load_average_start": os.getloadavg()}
    started = time.perf_counter()
    server = _start_server(port, workers)
    run["server_startup_seconds"] = time.perf_counter() - started
    process = psutil.Process(server.pid)
    patients = _patients()
    try:
        _phase(port, process, patients, CLIENTS, 1, WARMUP_REQUESTS * workers)
        run["rss_mb_start"] = _rss_mb(process)
        run["phases"] = []
        for clients, size, requests, top in phases:
            _common.log(f"serve_load: {requests} requests of {size} patient(s), top={top}, {clients} client(s)")
            before = _rss_mb(process)
            phase = _phase(port, process, patients, clients, size, requests, top)
            phase["rss_mb_before"], phase["rss_mb_after"] = before, _rss_mb(process)
            run["phases"].append(phase)
            _common.log(
                f"serve_load: {phase['requests_per_s']:.1f} req/s, {phase['patients_per_s']:.0f} patients/s, "
                f"p50 {phase['latency_ms']['p50']:.1f} ms, p99 {phase['latency_ms']['p99']:.1f} ms, "
                f"errors {phase['errors']}, RSS {before:.0f} -> {phase['rss_mb_after']:.0f} MB, "
                f"server CPU {phase['server_cpu_ms_per_request']:.1f} ms/request"
            )
        run["rss_mb_end"] = _rss_mb(process)
    finally:
        server.terminate()
        server.wait(timeout=60)
    run["load_average_end"] = os.getloadavg()
    loaded, hundred, alone, bare = run["phases"]
    run["verdict"] = {
        "errors": sum(p["errors"] for p in run["phases"]),
        "rss_growth_mb": run["rss_mb_end"] - run["rss_mb_start"],
        "rss_growth_mb_second_half_of_each_phase": [p["rss_mb_growth_second_half"] for p in run["phases"]],
        "p50_ms_1_patient_8_clients": loaded["latency_ms"]["p50"],
        "p99_ms_1_patient_8_clients": loaded["latency_ms"]["p99"],
        "p50_ms_1_patient_1_client": alone["latency_ms"]["p50"],
        "p99_ms_1_patient_1_client": alone["latency_ms"]["p99"],
        "patients_per_s_100": hundred["patients_per_s"],
        "patients_per_s_100_without_reasons": bare["patients_per_s"],
        "meets": {
            "p50_ms_1_patient (1 client)": alone["latency_ms"]["p50"] < TARGETS["p50_ms_1_patient"],
            "p99_ms_1_patient (1 client)": alone["latency_ms"]["p99"] < TARGETS["p99_ms_1_patient"],
            "p50_ms_1_patient (8 clients)": loaded["latency_ms"]["p50"] < TARGETS["p50_ms_1_patient"],
            "p99_ms_1_patient (8 clients)": loaded["latency_ms"]["p99"] < TARGETS["p99_ms_1_patient"],
            "patients_per_s_100": hundred["patients_per_s"] > TARGETS["patients_per_s_100"],
            "zero_errors": all(p["errors"] == 0 for p in run["phases"]),
        },
    }
    return run


def run(
    quick: bool = False, workers: tuple[int, ...] = (1, 2), out: Path = _common.RESULTS_DIR / "serve_load.json"
) -> dict[str, Any]:
    """Run the load test once per number of server processes in ``workers`` and write ``serve_load.json``."""
    phases = QUICK_PHASES if quick else FULL_PHASES
    result: dict[str, Any] = {
        "part": "serve_load",
        "mode": "quick" if quick else "full",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m benchmarks.serve_load" + (" --quick" if quick else ""),
        "machine": _common.machine(),
        "versions": package_versions(),
        "setup": {
            "server": "carrisk serve --workers N (default limits: rate limit 100 requests/s per client and "
            "process, 1000 patients/request), models/default",
            "clients": CLIENTS,
            "connection": "HTTP/1.1 keep-alive, one per client thread",
            "target": HOST,
            "phase_time_limit_s": PHASE_TIME_LIMIT_S,
        },
        "model": _model_served(),
        "load_average_start": os.getloadavg(),
        "targets": TARGETS,
    }
    result["runs"] = [_run_server_load(phases, n) for n in workers]
    result["load_average_end"] = os.getloadavg()
    _common.write_json(out, result)
    _common.log(f"serve_load: wrote {out}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 + 20 requests instead of 2,000 + 200")
    parser.add_argument("--workers", default="1,2", help="comma-separated server process counts (default 1,2)")
    parser.add_argument("--out", type=Path, default=_common.RESULTS_DIR / "serve_load.json", help="result JSON")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    workers = tuple(int(w) for w in args.workers.split(","))
    result = run(quick=args.quick, workers=workers, out=args.out)
    return 0 if all(r["verdict"]["errors"] == 0 for r in result["runs"]) else 1


if __name__ == "__main__":
    sys.exit(main())
