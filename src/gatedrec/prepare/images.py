"""Item images from a folder (files named by the raw item id) or downloaded from the metadata's URLs:
bounded concurrency, a timeout, retries with back-off for transient failures, a local cache (a URL
fetched once is never fetched again), and a count of the failures by reason. An item whose image cannot
be had has no image; it is neither dropped nor given a fake one."""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from gatedrec.io import write_atomic
from gatedrec.progress import progress_bar

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp")
USER_AGENT = "gatedrec-prepare/0.1 (+https://pypi.org/project/gatedrec)"
PERMANENT_HTTP_ERRORS = {400, 401, 403, 404, 410}


def is_url(reference: str) -> bool:
    return reference.startswith(("http://", "https://"))


@dataclass
class ImageFetch:
    workers: int = 8
    timeout: float = 10.0
    retries: int = 2
    backoff: float = 0.5


@dataclass
class ImageReport:
    found: int = 0
    from_cache: int = 0
    downloaded: int = 0
    failures: Counter = field(default_factory=Counter)
    without_url: int = 0

    def to_dict(self) -> dict:
        return {"found": self.found, "from_cache": self.from_cache, "downloaded": self.downloaded,
                "without_url": self.without_url, "failed": sum(self.failures.values()),
                "failures": dict(self.failures.most_common())}


def images_in_folder(folder: Path, raw_ids: list[str]) -> tuple[dict[int, Path], ImageReport]:
    """Item index -> the file ``<raw id>.<image extension>`` in ``folder``."""
    by_stem = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            by_stem.setdefault(path.stem, path)
    found = {item: by_stem[raw] for item, raw in enumerate(raw_ids) if raw in by_stem}
    report = ImageReport(found=len(found))
    report.failures["no file in the folder"] = len(raw_ids) - len(found)
    return found, report


def cache_path(cache: Path, url: str) -> Path:
    suffix = Path(urlparse(url).path).suffix.lower()
    name = hashlib.blake2b(url.encode(), digest_size=16).hexdigest()
    return cache / f"{name}{suffix if suffix in IMAGE_EXTENSIONS else '.img'}"


def download_images(urls: dict[int, list[str]], n_items: int, cache: Path, fetch: ImageFetch,
                    quiet: bool = False) -> tuple[dict[int, Path], ImageReport]:
    """Item index -> a local copy of its first URL that could be fetched."""
    cache.mkdir(parents=True, exist_ok=True)
    report = ImageReport(without_url=n_items - len(urls))
    found = {}
    with progress_bar(quiet) as progress, ThreadPoolExecutor(max_workers=max(1, fetch.workers)) as pool:
        task = progress.add_task("images", total=len(urls), unit="image")
        futures = {pool.submit(_fetch_first, item_urls, cache, fetch): item for item, item_urls in urls.items()}
        for future in as_completed(futures):
            path, outcome = future.result()
            if path is None:
                report.failures[outcome] += 1
            else:
                found[futures[future]] = path
                report.found += 1
                if outcome == "cached":
                    report.from_cache += 1
                else:
                    report.downloaded += 1
            progress.advance(task)
    return found, report


def _fetch_first(urls: list[str], cache: Path, fetch: ImageFetch) -> tuple[Path | None, str]:
    reason = "no URL"
    for url in urls:
        target = cache_path(cache, url)
        if target.exists():
            return target, "cached"
        data, reason = _fetch(url, fetch)
        if data is not None:
            write_atomic(target, lambda tmp: tmp.write_bytes(data))
            return target, "downloaded"
    return None, reason


def _fetch(url: str, fetch: ImageFetch) -> tuple[bytes | None, str]:
    """The body of ``url``, or None and the reason of the last failure; transient failures are retried."""
    reason = ""
    for attempt in range(fetch.retries + 1):
        if attempt:
            time.sleep(fetch.backoff * 2 ** (attempt - 1))
        try:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=fetch.timeout) as response:
                return response.read(), "ok"
        except urllib.error.HTTPError as error:
            reason = f"HTTP {error.code}"
            if error.code in PERMANENT_HTTP_ERRORS:
                break
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as error:
            cause = getattr(error, "reason", error)
            timed_out = isinstance(cause, TimeoutError) or "timed out" in str(cause)
            reason = "timeout" if timed_out else f"{type(cause).__name__}"
    return None, reason
