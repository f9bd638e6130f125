"""``fluxmusic serve`` under load: a burst of concurrent clients against a small queue, then clients that
retry until served. Starts its own server on a free loopback port (API only) and stops it at the end.

Sections:

- ``serial``: one request at a time (the service time of one clip);
- ``burst``: ``--clients`` requests at once against ``--queue-size``: how many are served and how many
  refused (503), latency p50/p95 of each kind, throughput of the served ones;
- ``retry``: the same clients, each retrying after a refusal (``--retry-wait`` s) until served:
  latency from the first try to the audio, throughput, tries per clip;
- memory: the server's resident set when idle, its peak, and 2 s after the load.

Every served clip is checked against its request (its prompt and seed in the settings header).

    python benchmarks/bench_serve.py                                  # bundled model, 24 clients, queue 4
    python benchmarks/bench_serve.py --model path/to/folder --steps 8 --clients 48
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import requests

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


class Server:
    """A ``fluxmusic serve --no-ui`` process on a free loopback port."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        command = [
            sys.executable, "-m", "fluxmusic", "serve", "--no-ui", "--model", args.model,
            "--port", str(self.port), "--queue-size", str(args.queue_size), "--max-duration", "600",
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1"}
        self.log = tempfile.NamedTemporaryFile("w+", prefix="bench-serve-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: {Path(self.log.name).read_text()}")
            try:
                if requests.get(self.url + "/health", timeout=2).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.5)
        self.stop()
        raise SystemExit("server did not start in 300 s")

    def rss(self) -> int:
        return psutil.Process(self.proc.pid).memory_info().rss

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class MemoryWatch(threading.Thread):
    """Samples the server's resident set every 50 ms; ``peak`` is the highest seen."""

    def __init__(self, server: Server) -> None:
        super().__init__(daemon=True)
        self.server, self.peak, self.running = server, server.rss(), True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.server.rss())
            time.sleep(0.05)


def ask(server: Server, args: argparse.Namespace, i: int) -> tuple[int, float, requests.Response]:
    body: dict[str, Any] = {"prompt": f"{args.prompt} (client {i})", "seed": 5000 + i}
    if args.steps:
        body["steps"] = args.steps
    if args.duration:
        body["duration"] = args.duration
    began = time.monotonic()
    answer = requests.post(server.url + "/v1/audio/generations", json=body, timeout=args.bound)
    return i, time.monotonic() - began, answer


def check(i: int, answer: requests.Response, args: argparse.Namespace) -> None:
    settings = json.loads(answer.headers["x-fluxmusic-settings"])
    if (settings["prompt"], settings["seed"]) != (f"{args.prompt} (client {i})", 5000 + i):
        raise SystemExit(f"client {i} got another client's clip: {settings['prompt']!r}, {settings['seed']}")


def summary(latencies: list[float]) -> dict[str, Any]:
    return {"n": len(latencies), "p50_s": percentile(latencies, 0.5), "p95_s": percentile(latencies, 0.95)}


def _cells(stats: dict[str, Any]) -> tuple[int, float | None, float | None]:
    return stats["n"], stats["p50_s"], stats["p95_s"]


def run_burst(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    start = threading.Barrier(args.clients)

    def one(i: int) -> tuple[int, float, requests.Response]:
        start.wait()
        return ask(server, args, i)

    began = time.monotonic()
    with ThreadPoolExecutor(args.clients) as pool:
        answers = list(pool.map(one, range(args.clients)))
    wall = time.monotonic() - began
    served = [(i, t) for i, t, a in answers if a.status_code == 200]
    for i, _, a in answers:
        if a.status_code == 200:
            check(i, a, args)
    refused = [t for _, t, a in answers if a.status_code == 503]
    other = sorted({a.status_code for _, _, a in answers} - {200, 503})
    return {
        "clients": args.clients,
        "served": summary([t for _, t in served]),
        "refused_503": summary(refused),
        "other_statuses": other,
        "wall_s": wall,
        "throughput_clips_per_s": len(served) / wall,
    }


def run_retry(server: Server, args: argparse.Namespace) -> dict[str, Any]:
    start = threading.Barrier(args.clients)

    def one(i: int) -> tuple[float, int]:
        start.wait()
        began, tries = time.monotonic(), 0
        while time.monotonic() - began < args.bound:
            tries += 1
            _, _, answer = ask(server, args, i)
            if answer.status_code == 200:
                check(i, answer, args)
                return time.monotonic() - began, tries
            if answer.status_code != 503:
                raise SystemExit(f"client {i}: status {answer.status_code}: {answer.text}")
            time.sleep(args.retry_wait)
        raise SystemExit(f"client {i} was not served within {args.bound} s")

    began = time.monotonic()
    with ThreadPoolExecutor(args.clients) as pool:
        done = list(pool.map(one, range(args.clients)))
    wall = time.monotonic() - began
    return {
        "clients": args.clients,
        "latency": summary([t for t, _ in done]),
        "tries_mean": statistics.mean(n for _, n in done),
        "wall_s": wall,
        "throughput_clips_per_s": args.clients / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="bundled")
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--queue-size", type=int, default=4)
    parser.add_argument("--steps", type=int, default=None, help="default: the model's")
    parser.add_argument("--duration", type=float, default=None, help="default: the model's")
    parser.add_argument("--prompt", default="solo piano, a calm piece at 90 BPM")
    parser.add_argument("--threads", type=int, default=2, help="the server's OMP_NUM_THREADS")
    parser.add_argument("--retry-wait", type=float, default=0.5)
    parser.add_argument("--bound", type=float, default=600.0, help="longest a client may wait in all (s)")
    parser.add_argument("--out", type=Path, default=RESULTS / "bench_serve.json")
    args = parser.parse_args()

    server = Server(args)
    try:
        serial = [ask(server, args, 10_000 + k)[1] for k in range(3)]
        idle = server.rss()
        watch = MemoryWatch(server)
        watch.start()
        burst = run_burst(server, args)
        retry = run_retry(server, args)
        watch.running = False
        time.sleep(2.0)
        after = server.rss()
        health = requests.get(server.url + "/health", timeout=5).json()
    finally:
        server.stop()
    memory = {"idle_mb": idle / 2**20, "peak_mb": watch.peak / 2**20, "after_mb": after / 2**20}
    result = {
        "model": args.model,
        "queue_size": args.queue_size,
        "steps": args.steps,
        "duration": args.duration,
        "threads": args.threads,
        "cpu_count": os.cpu_count(),
        "serial": {"latency_s": serial, "mean_s": statistics.mean(serial)},
        "burst": burst,
        "retry": retry,
        "memory": memory,
        "healthy_after": health["status"] == "ok" and health["queue"]["waiting"] == 0,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    b, r = burst, retry
    serial_rate = 1 / statistics.mean(serial)
    rows = [
        ("serial (1 at a time)", 3, statistics.median(serial), max(serial), serial_rate),
        ("burst: served", *_cells(b["served"]), b["throughput_clips_per_s"]),
        ("burst: refused (503)", *_cells(b["refused_503"]), None),
        (f"retrying ({r['tries_mean']:.1f} tries each)", *_cells(r["latency"]), r["throughput_clips_per_s"]),
    ]  # fmt: skip
    print(
        f"model {args.model}, {args.clients} clients, queue {args.queue_size}, server threads {args.threads}"
    )
    print(f"| {'requests':<32} | {'n':>3} | {'p50 s':>6} | {'p95 s':>6} | {'clips/s':>7} |")
    print(f"|{'-' * 34}|{'-' * 5}|{'-' * 8}|{'-' * 8}|{'-' * 9}|")
    for name, n, p50, p95, rate in rows:
        print(f"| {name:<32} | {n:>3} | {fmt(p50):>6} | {fmt(p95):>6} | {fmt(rate):>7} |")
    mb = {k: f"{v:.0f}" for k, v in memory.items()}
    print(f"memory (MB): idle {mb['idle_mb']}, peak {mb['peak_mb']}, after {mb['after_mb']}")
    print(f"other statuses: {b['other_statuses'] or 'none'}; healthy after: {result['healthy_after']}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
