"""Serving figures: HTTP latency and throughput of `gatedrec serve`, live item additions under load, and the
HNSW index against exact top-K on large generated catalogues. Loopback only; every load is bounded in requests
and in time.

    python benchmarks/serving.py                      # all parts
    python benchmarks/serving.py --part http          # RLMultimodalRec on amazon-scientific-mm, 8 clients
    python benchmarks/serving.py --part ann --sizes 200000,1000000
    python benchmarks/serving.py --part page          # a screenshot of the web page for the docs

http: a RLMultimodalRec run on amazon-scientific-mm (trained here with the defaults, seed 1, unless --run names
one) served by `gatedrec serve` in its own process; 8 client threads with keep-alive connections send
GET /v1/users/{user}/recommendations?k=20 for random users (--requests of them, at most --seconds), then the
same with explain=true, then 1,000 POST /v1/items (a random item's features with noise) while the readers
keep reading, each new item asked for with GET /v1/items/{item}/similar right after its 201.
ann: item vectors drawn around cluster centres (the shape of trained embeddings: clusters, norms that vary),
queries drawn the same way; recall@20 of the HNSW index against exact top-20, and per-query latency of both.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, SERVING_DOC, data_config, machine, save_report, update_readme  # noqa: E402

from gatedrec.progress import progress_bar  # noqa: E402
from gatedrec.serving.topk import HnswIndex, top_k  # noqa: E402

DATASET = "amazon-scientific-mm"
CLIENTS = 8
ADDS = 1000
SCREENSHOT = REPO / "docs" / "serving-page.png"


# ---- the server ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def train_run(out: Path) -> Path:
    data = data_config(DATASET)
    subprocess.run([sys.executable, "-m", "gatedrec", "train", "--data", data["path"], "--model", "rlmultimodalrec",
                    "--seed", "1", "--quiet", "--out", str(out)], check=True)
    return out


class Server:
    """`gatedrec serve` in its own process on 127.0.0.1."""

    def __init__(self, run: Path, index: str = "exact"):
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gatedrec", "serve", "--run", str(run), "--port", str(self.port), "--index", index],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gatedrec serve stopped: {self.process.stderr.read().decode()}")
            try:
                if request(self.connection(), "GET", "/healthz")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gatedrec serve did not answer within 120 s")

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def request(connection, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    payload = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    connection.request(method, path, body=payload, headers=headers)
    response = connection.getresponse()
    return response.status, response.read()


# ---- load ------------------------------------------------------------------------------------------------
class Connection:
    """A keep-alive HTTP/1.1 client on a raw socket: a request is one send, its answer read by Content-Length.
    Lighter than http.client, whose header parsing would otherwise take much of the client's share of the CPU."""

    def __init__(self, port: int):
        self.port = port
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buffer = b""

    def get(self, path: str) -> int:
        self.socket.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        while b"\r\n\r\n" not in self.buffer:
            self.receive()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
        while len(self.buffer) < length:
            self.receive()
        self.buffer = self.buffer[length:]
        return int(lines[0].split()[1])

    def receive(self) -> None:
        chunk = self.socket.recv(1 << 16)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk


class Load:
    """Client threads sending GET requests until ``total`` are sent or ``seconds`` pass: as fast as answers come
    (closed loop), or at ``rate`` requests per second in all (open loop; each latency counted from the time its
    request was due, so that a slow answer also counts against the requests it held up)."""

    def __init__(self, server: Server, paths, total: int, seconds: float, clients: int = CLIENTS,
                 rate: float | None = None):
        self.server, self.paths, self.total, self.seconds, self.clients = server, paths, total, seconds, clients
        self.rate = rate
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.sent = 0
        self.lock = threading.Lock()

    def claim(self) -> int | None:
        with self.lock:
            if self.sent >= self.total or time.perf_counter() > self.deadline:
                return None
            self.sent += 1
            return self.sent - 1

    def client(self, seed: int) -> None:
        rng = random.Random(seed)
        connection = Connection(self.server.port)
        while (number := self.claim()) is not None:
            path = self.paths(rng)
            due = self.started + number / self.rate if self.rate else time.perf_counter()
            if self.rate:
                time.sleep(max(0.0, due - time.perf_counter()))
            try:
                status = connection.get(path)
            except (OSError, ValueError, StopIteration) as error:
                status, connection = repr(error), Connection(self.server.port)
            elapsed = time.perf_counter() - due
            with self.lock:
                self.latencies.append(elapsed)
                if status != 200:
                    self.errors.append(f"{path}: {status}")

    def run(self, during=None) -> dict:
        self.started = time.perf_counter()
        self.deadline = self.started + self.seconds
        threads = [threading.Thread(target=self.client, args=(seed,)) for seed in range(self.clients)]
        for thread in threads:
            thread.start()
        extra = None
        if during is not None:
            extra = during()
            with self.lock:
                self.total = self.sent  # the readers stop with the work they ran beside
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - self.started
        return {**summary(self.latencies, wall), "offered_rate": self.rate, "errors": len(self.errors),
                "first_errors": self.errors[:5], **({"during": extra} if extra is not None else {})}


def summary(latencies: list[float], wall: float) -> dict:
    milliseconds = np.array(latencies) * 1000
    return {"requests": len(latencies), "seconds": wall, "requests_per_second": len(latencies) / wall,
            "p50_ms": float(np.percentile(milliseconds, 50)), "p90_ms": float(np.percentile(milliseconds, 90)),
            "p99_ms": float(np.percentile(milliseconds, 99)), "max_ms": float(milliseconds.max())}


def add_items(server: Server, features: dict[str, np.ndarray], count: int, seconds: float) -> dict:
    """``count`` POST /v1/items, each new item asked for its similar items right after."""
    rng = np.random.default_rng(0)
    connection = server.connection()
    add_ms, similar_ms, errors = [], [], []
    deadline = time.perf_counter() + seconds
    with progress_bar() as progress:
        task = progress.add_task("adding items under load", total=count, unit="item")
        for number in range(count):
            if time.perf_counter() > deadline:
                errors.append(f"stopped at {number} adds: the {seconds:.0f} s limit")
                break
            source = int(rng.integers(len(next(iter(features.values())))))
            vectors = {name: (table[source] + 0.05 * rng.standard_normal(table.shape[1])).tolist()
                       for name, table in features.items()}
            item = f"benchmark-new-{number}"
            started = time.perf_counter()
            status, body = request(connection, "POST", "/v1/items", {"item": item, "features": vectors})
            add_ms.append((time.perf_counter() - started) * 1000)
            if status != 201:
                errors.append(f"POST {item}: {status} {body[:200]!r}")
                continue
            started = time.perf_counter()
            status, body = request(connection, "GET", f"/v1/items/{item}/similar?k=20")
            similar_ms.append((time.perf_counter() - started) * 1000)
            if status != 200 or len(json.loads(body)["items"]) != 20:
                errors.append(f"GET similar of {item}: {status}")
            progress.advance(task)
    return {"adds": len(add_ms), "errors": len(errors), "first_errors": errors[:5],
            "add_p50_ms": float(np.median(add_ms)), "add_p99_ms": float(np.percentile(add_ms, 99)),
            "similar_after_add_p50_ms": float(np.median(similar_ms)) if similar_ms else None}


def http_part(run: Path | None, total: int, seconds: float, rate: float) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        source = run or train_run(Path(scratch) / "trained")
        served = Path(scratch) / "served"
        shutil.copytree(source, served, ignore=shutil.ignore_patterns("added_items.jsonl"))
        metrics = json.loads((served / "metrics.json").read_text())
        users = json.loads((served / "serving" / "user_ids.json").read_text())
        data = Path(data_config(DATASET)["path"])
        features = {"visual": np.load(data / "image_feat.npy"), "text": np.load(data / "text_feat.npy")}
        server = Server(served)
        try:
            def plain(rng):
                return f"/v1/users/{rng.choice(users)}/recommendations?k=20"

            def explained(rng):
                return plain(rng) + "&explain=true"

            Load(server, plain, 1000, 30).run()  # warm-up
            results = {"test_recall@20": metrics["test"]["recall@20"], "users": len(users)}
            loads = {"recommend": (plain, None), "recommend_explain": (explained, None),
                     f"recommend_at_{rate:.0f}_per_s": (plain, rate),
                     f"recommend_explain_at_{rate:.0f}_per_s": (explained, rate)}
            for name, (paths, offered) in loads.items():
                print(f"{name}: up to {total:,} requests, {CLIENTS} clients")
                results[name] = Load(server, paths, total, seconds, rate=offered).run()
            print(f"{ADDS} additions while {CLIENTS} clients read at {rate:.0f} requests/s")
            results["adds_under_load"] = Load(server, plain, 10 ** 9, seconds, rate=rate).run(
                during=lambda: add_items(server, features, ADDS, seconds))
        finally:
            server.stop()
    return results


# ---- ANN ---------------------------------------------------------------------------------------------------
def clustered_vectors(count: int, dim: int, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cluster = rng.integers(0, len(centres), count)
    vectors = centres[cluster] + 0.6 * rng.standard_normal((count, dim)).astype(np.float32)
    return (vectors * rng.lognormal(0.0, 0.3, (count, 1))).astype(np.float32)


def ann_part(sizes: list[int], queries: int, dim: int = 64, k: int = 20) -> list[dict]:
    rows = []
    for size in sizes:
        rng = np.random.default_rng(size)
        centres = rng.standard_normal((max(16, size // 500), dim)).astype(np.float32)
        items = clustered_vectors(size, dim, centres, rng)
        users = clustered_vectors(queries, dim, centres, rng)
        started = time.perf_counter()
        index = HnswIndex(items)
        build = time.perf_counter() - started
        exact_ms, hnsw_ms, recalls = [], [], []
        with progress_bar() as progress:
            task = progress.add_task(f"{size:,} items: exact vs hnsw", total=queries, unit="query")
            for query in users:
                started = time.perf_counter()
                exact, _ = top_k(items @ query, k)
                exact_ms.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                found, _ = index.search(query, items, k)
                hnsw_ms.append((time.perf_counter() - started) * 1000)
                recalls.append(len(np.intersect1d(exact, found)) / k)
                progress.advance(task)
        rows.append({"items": size, "dim": dim, "queries": queries, "build_seconds": build,
                     "recall@20": float(np.mean(recalls)), "exact_p50_ms": float(np.median(exact_ms)),
                     "hnsw_p50_ms": float(np.median(hnsw_ms)), "exact_p99_ms": float(np.percentile(exact_ms, 99)),
                     "hnsw_p99_ms": float(np.percentile(hnsw_ms, 99)),
                     "speed-up": float(np.median(exact_ms) / np.median(hnsw_ms))})
        print(rows[-1])
    return rows


# ---- the page ------------------------------------------------------------------------------------------------
def page_part(run: Path | None) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    sys.path.insert(0, str(REPO / "tests"))
    from browser import headless_chromium

    with tempfile.TemporaryDirectory() as scratch:
        source = run or train_run(Path(scratch) / "trained")
        served = Path(scratch) / "served"
        shutil.copytree(source, served, ignore=shutil.ignore_patterns("added_items.jsonl"))
        server = Server(served)
        driver = headless_chromium(width=1200, height=1500)
        try:
            driver.get(f"http://127.0.0.1:{server.port}/")
            user = json.loads((served / "serving" / "user_ids.json").read_text())[7]
            WebDriverWait(driver, 30).until(expected_conditions.text_to_be_present_in_element((By.ID, "run-info"),
                                                                                             "users"))
            driver.find_element(By.ID, "user-input").send_keys(user)
            driver.find_element(By.ID, "user-go").click()
            WebDriverWait(driver, 30).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recommendations li")) > 5)
            driver.save_screenshot(str(SCREENSHOT))
        finally:
            driver.quit()
            server.stop()
    return str(SCREENSHOT.relative_to(REPO))


# ---- report ------------------------------------------------------------------------------------------------
def markdown(result: dict) -> str:
    lines = [f"Machine: {result['machine']}.", ""]
    if "http" in result:
        http_result = result["http"]
        lines += [f"`gatedrec serve` of RLMultimodalRec on {DATASET} (test Recall@20 "
                  f"{http_result['test_recall@20']:.4f}, {http_result['users']:,} users), {CLIENTS} client threads "
                  "with keep-alive connections on the same machine, k=20: as fast as the answers come (closed loop), "
                  "and at a paced offered rate (open loop, each latency counted from the time its request was due).",
                  "",
                  "| load | requests | errors | requests/s | p50 ms | p90 ms | p99 ms | max ms |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, row in http_result.items():
            if not isinstance(row, dict):
                continue
            lines.append(f"| {name} | {row['requests']:,} | {row['errors']} | {row['requests_per_second']:.0f} | "
                         f"{row['p50_ms']:.2f} | {row['p90_ms']:.2f} | {row['p99_ms']:.2f} | {row['max_ms']:.1f} |")
        adds = http_result["adds_under_load"]["during"]
        lines += ["", f"Additions under that load: {adds['adds']:,} POST /v1/items, {adds['errors']} errors (each "
                  f"new item then asked for its 20 similar items), add p50 {adds['add_p50_ms']:.1f} ms, p99 "
                  f"{adds['add_p99_ms']:.1f} ms; similar right after the add p50 "
                  f"{adds['similar_after_add_p50_ms']:.1f} ms.", ""]
    if "ann" in result:
        lines += ["HNSW (faiss, 32 neighbours, efConstruction 80, efSearch 128) against exact top-20, 64-d generated "
                  "item vectors around cluster centres, one query at a time:", "",
                  "| items | build s | recall@20 | exact p50 ms | hnsw p50 ms | speed-up | exact p99 ms "
                  "| hnsw p99 ms |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in result["ann"]:
            lines.append(f"| {row['items']:,} | {row['build_seconds']:.0f} | {row['recall@20']:.3f} | "
                         f"{row['exact_p50_ms']:.2f} | {row['hnsw_p50_ms']:.3f} | {row['speed-up']:.0f} | "
                         f"{row['exact_p99_ms']:.2f} | {row['hnsw_p99_ms']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=("all", "http", "ann", "page"), default="all")
    parser.add_argument("--run", type=Path, help="serve this run instead of training one")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=300, help="time limit of each load")
    parser.add_argument("--rate", type=float, default=500, help="offered requests per second of the paced loads")
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--queries", type=int, default=1000)
    args = parser.parse_args()
    result = {"machine": machine()}
    if args.part in ("all", "http"):
        result["http"] = http_part(args.run, args.requests, args.seconds, args.rate)
    if args.part in ("all", "ann"):
        result["ann"] = ann_part([int(size) for size in args.sizes.split(",")], args.queries)
    if args.part in ("all", "page"):
        result["screenshot"] = page_part(args.run)
    if args.part == "page":
        print(f"wrote {result['screenshot']}")
        return
    stem = "serving" if args.part == "all" else f"serving-{args.part}"
    save_report(stem, result, markdown(result))
    if args.part == "all":
        update_readme(markdown(result), "serving", SERVING_DOC)


if __name__ == "__main__":
    main()
