"""Small raw data sets in the Amazon 2014 and 2023 formats and as generic tables, with images served
over loopback HTTP: the inputs of the prepare tests."""

from __future__ import annotations

import gzip
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLOURS = {"red": (220, 30, 30), "green": (30, 170, 40), "blue": (30, 60, 220)}
SHAPES = ("circle", "square")
N_USERS, N_ITEMS, PER_USER = 40, 12, 6


def draw(shape: str, colour: str, size: int = 96) -> Image.Image:
    image = Image.new("RGB", (size, size), (255, 255, 255))
    pen = ImageDraw.Draw(image)
    box = (size // 5, size // 5, size - size // 5, size - size // 5)
    (pen.ellipse if shape == "circle" else pen.rectangle)(box, fill=COLOURS[colour])
    return image


def item_shape(item: int) -> tuple[str, str]:
    return SHAPES[item % 2], list(COLOURS)[item % 3]


def interactions(seed: int = 0) -> list[tuple[str, str, float, int]]:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(N_USERS):
        for rank, item in enumerate(rng.choice(N_ITEMS, PER_USER, replace=False)):
            rows.append((f"U{user:03d}", f"B{item:03d}", float(rng.integers(1, 6)), 1_400_000_000 + user * 1000 + rank))
    return rows


def item_title(item: int) -> str:
    shape, colour = item_shape(item)
    return f"{colour} {shape} lamp number {item}"


def write_amazon_2014(folder: Path, image_url) -> tuple[Path, Path]:
    """Gzipped Python-literal lines (as the 2014 files are), with two malformed review lines (3 and 7)."""
    lines = [repr({"reviewerID": u, "asin": i, "overall": r, "unixReviewTime": t, "reviewText": "fine"})
             for u, i, r, t in interactions()]
    lines.insert(2, "{'reviewerID': 'U999', 'asin': ")  # line 3: cut short
    lines.insert(6, repr({"reviewerID": "U998", "overall": 5.0}))  # line 7: no asin
    reviews = folder / "reviews_2014.json.gz"
    with gzip.open(reviews, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    meta_lines = [
        repr({"asin": f"B{item:03d}", "title": item_title(item), "brand": "Acme",
              "categories": [["Home", "Lamps"]], "description": "A lamp.", "imUrl": image_url(item)})
        for item in range(N_ITEMS)
    ]
    meta = folder / "meta_2014.json.gz"
    with gzip.open(meta, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(meta_lines) + "\n")
    return reviews, meta


def write_amazon_2023(folder: Path) -> tuple[Path, Path]:
    lines = [json.dumps({"user_id": u, "parent_asin": i, "asin": i + "X", "rating": r, "timestamp": t * 1000,
                         "text": "ok"}) for u, i, r, t in interactions(seed=1)]
    lines.insert(4, "not json at all")  # line 5
    reviews = folder / "reviews_2023.jsonl"
    reviews.write_text("\n".join(lines) + "\n")
    meta_lines = [
        json.dumps({"parent_asin": f"B{item:03d}", "title": item_title(item), "store": "Acme", "features": ["bright"],
                    "description": ["A lamp."], "categories": ["Home", "Lamps"], "images": []})
        for item in range(N_ITEMS) if item != 5  # item 5 has no metadata: no text
    ]
    meta = folder / "meta_2023.jsonl"
    meta.write_text("\n".join(meta_lines) + "\n")
    return reviews, meta


def write_image_folder(folder: Path, skip: set[int] = frozenset()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for item in range(N_ITEMS):
        if item not in skip:
            draw(*item_shape(item)).save(folder / f"B{item:03d}.png")
    return folder


class ImageServer(BaseHTTPRequestHandler):
    """/B003.png serves that item's image; /flaky/... fails once with 503 then serves; others 404."""

    attempts: dict[str, int] = {}

    def do_GET(self):  # noqa: N802 (http.server's name)
        name = self.path.rsplit("/", 1)[-1]
        self.attempts[self.path] = self.attempts.get(self.path, 0) + 1
        if self.path.startswith("/flaky/") and self.attempts[self.path] == 1:
            self.send_error(503)
            return
        stem = name.removesuffix(".png")
        if not (stem.startswith("B") and stem[1:].isdigit() and int(stem[1:]) < N_ITEMS):
            self.send_error(404)
            return
        from io import BytesIO

        buffer = BytesIO()
        draw(*item_shape(int(stem[1:]))).save(buffer, format="PNG")
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(buffer.getvalue())

    def log_message(self, *args):
        pass


@contextmanager
def image_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ImageServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", ImageServer.attempts
    finally:
        server.shutdown()
        server.server_close()
