"""`gatedrec serve`'s HTTP API driven through a real uvicorn on 127.0.0.1: routes and their errors, metrics,
fuzzing of every route from the OpenAPI spec (schemathesis), and the web page in a headless Chromium."""

import os
import shutil
import socket
import threading
import time

import httpx
import numpy as np
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from browser import browser_paths, headless_chromium
from raw_samples import draw
from together import run_together
from gatedrec.config import RunConfig
from gatedrec.data import load_data
from gatedrec.serving import Recommender
from gatedrec.serving.web import create_app
from gatedrec.training import Trainer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LiveServer:
    """A uvicorn serving the app in a thread, on 127.0.0.1 only."""

    def __init__(self, recommender: Recommender):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(recommender), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            if time.time() > deadline:
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def served_run(tmp_path_factory, small_folder):
    """A trained run whose items have raw ids with a title, as a shop's would."""
    data = shutil.copytree(small_folder, tmp_path_factory.mktemp("data") / "shop")
    (data / "item_text.tsv").write_text("itemID\ttext\n" + "".join(f"{item}\tProduct {item}. In stock\n"
                                                                    for item in range(120)))
    picture = data / "pictures" / "one.png"
    picture.parent.mkdir()
    draw("circle", "blue", size=64).save(picture)
    (data / "item_images.tsv").write_text("itemID\timage\n0\thttp://127.0.0.1:9/0.jpg\n1\tpictures/one.png\n")
    config = RunConfig.for_model("rlmultimodalrec", epochs=3, seed=1, batch_size=512)
    config.data.path = str(data)
    run = tmp_path_factory.mktemp("runs") / "served"
    Trainer(config, load_data(config.data), run, quiet=True).fit()
    return run


@pytest.fixture(scope="module")
def server(served_run):
    live = LiveServer(Recommender.load(served_run))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as session:
        yield session


def test_recommendations_for_users_and_histories(client):
    answer = client.get("/v1/users/0/recommendations", params={"k": 5, "explain": "true"})
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == "0" and len(body["items"]) == 5
    first = body["items"][0]
    assert first["title"].startswith("Product ") and set(first["shares"]) == {"visual", "text"}
    assert first["because"] and {"item", "contribution", "title"} <= set(first["because"][0])
    plain = client.get("/v1/users/0/recommendations?k=5").json()["items"]
    assert [row["item"] for row in plain] == [row["item"] for row in body["items"]] and "because" not in plain[0]
    history = client.get("/v1/users/0").json()["history"]
    assert history and not {row["item"] for row in history} & {row["item"] for row in plain}
    posted = client.post("/v1/recommendations", json={"history": ["1", "2"], "k": 4, "explain": True})
    assert posted.status_code == 200 and len(posted.json()["items"]) == 4
    assert client.get("/v1/items/3/similar", params={"k": 3}).json()["items"][0]["item"] != "3"
    assert client.get("/v1/items", params={"query": "product 11"}).json()["ids"][:1] == ["11"]


@pytest.mark.parametrize("method, path, body, status, message", [
    ("GET", "/v1/users/ghost/recommendations", None, 404, "unknown user 'ghost'"),
    ("GET", "/v1/users/0/recommendations?k=0", None, 422, "greater than or equal to 1"),
    ("GET", "/v1/users/0/recommendations?k=many", None, 422, "valid integer"),
    ("GET", "/v1/items/ghost", None, 404, "unknown item 'ghost'"),
    ("GET", "/v1/items/ghost/similar", None, 404, "unknown item 'ghost'"),
    ("POST", "/v1/recommendations", {"history": []}, 422, "at least 1 item"),
    ("POST", "/v1/recommendations", {"history": ["ghost"]}, 404, "unknown item 'ghost'"),
    ("POST", "/v1/recommendations", {"k": 3}, 422, "history"),
    ("POST", "/v1/items", {"item": "n", "features": {"visual": [1, 2]}}, 422, "have 2 values"),
    ("POST", "/v1/items", {"item": "n"}, 422, "has no content"),
    ("POST", "/v1/items", {"item": "3", "features": {"visual": [1] * 16}}, 409, "exists already"),
    ("POST", "/v1/items", {"item": "n", "text": "a bucket"}, 422, "does not record which encoder"),
])
def test_bad_requests_get_a_4xx_that_says_what_to_fix(client, method, path, body, status, message):
    answer = client.request(method, path, json=body)
    assert answer.status_code == status
    assert message in answer.json()["detail"]


def test_added_items_are_served_at_once_and_survive_a_restart(client, served_run):
    features = {"visual": np.linspace(-1, 1, 16).tolist(), "text": np.linspace(1, -1, 12).tolist()}
    created = client.post("/v1/items", json={"item": "live-1", "title": "Live thing", "features": features})
    assert created.status_code == 201 and created.json()["added"] is True
    assert client.get("/v1/items/live-1").json()["title"] == "Live thing"
    similar = client.get("/v1/items/live-1/similar", params={"k": 5}).json()["items"]
    assert len(similar) == 5
    assert client.post("/v1/recommendations", json={"history": ["live-1"], "k": 3}).status_code == 200
    assert Recommender.load(served_run).item_details("live-1")["added"]


def test_concurrent_adds_and_reads_over_http(server):
    failures = []

    def adder(worker):
        with httpx.Client(base_url=server.url, timeout=30) as session:
            for number in range(10):
                item = f"c{worker}-{number}"
                features = {"text": np.random.default_rng(number).standard_normal(12).tolist()}
                if session.post("/v1/items", json={"item": item, "features": features}).status_code != 201:
                    failures.append(f"add {item}")
                elif session.get(f"/v1/items/{item}/similar").status_code != 200:
                    failures.append(f"similar {item}")

    def reader():
        with httpx.Client(base_url=server.url, timeout=30) as session:
            for number in range(40):
                answer = session.get(f"/v1/users/{number % 30}/recommendations?k=20")
                if answer.status_code != 200 or len(answer.json()["items"]) != 20:
                    failures.append(f"read {number}")

    run_together([(adder, worker) for worker in range(2)] + [(reader,)] * 3)
    assert failures == []


def test_item_images_are_redirected_or_served(client):
    remote = client.get("/v1/items/0/image")
    assert remote.status_code == 307 and remote.headers["location"] == "http://127.0.0.1:9/0.jpg"
    local = client.get("/v1/items/1/image")
    assert local.status_code == 200 and local.headers["content-type"] == "image/png"
    assert client.get("/v1/items/2/image").status_code == 404


def test_health_metrics_and_docs(client):
    assert client.get("/healthz").json()["status"] == "ok"
    client.get("/v1/users/ghost/recommendations")
    metrics = client.get("/metrics").text
    assert 'gatedrec_requests_total{method="GET",route="/v1/users/{user}/recommendations",status="404"}' in metrics
    assert 'gatedrec_request_seconds_bucket{le="0.005",method="GET",route="/healthz"}' in metrics
    assert "gatedrec_errors_total" in metrics
    spec = client.get("/openapi.json").json()
    assert {"/v1/users/{user}/recommendations", "/v1/recommendations", "/v1/items", "/v1/items/{item}",
            "/v1/items/{item}/similar"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200
    assert "<title>gatedrec recommendations</title>" in client.get("/").text
    assert client.get("/static/app.js").status_code == 200 and client.get("/static/nope.js").status_code == 404


@pytest.fixture(scope="module")
def api_schema(server):
    return schemathesis.openapi.from_url(f"{server.url}/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case):
    case.call_and_validate(checks=[not_a_server_error], allow_redirects=False)  # an image's URL stays unvisited


def browser_or_skip():
    browser, driver = browser_paths()
    if browser is None or driver is None:
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium and chromium-driver (.ci/run installs them)")
        pytest.skip("no headless browser here: apt-get install chromium chromium-driver")
    return headless_chromium()


@pytest.fixture
def page_server(served_run, tmp_path):
    """A server of its own: the catalogue as trained, without the items other tests add."""
    run = shutil.copytree(served_run, tmp_path / "run", ignore=shutil.ignore_patterns("added_items.jsonl"))
    live = LiveServer(Recommender.load(run))
    yield live
    live.stop()


def test_the_page_shows_recommendations_shares_and_reasons(page_server):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser_or_skip()
    try:
        wait = WebDriverWait(driver, 30)
        driver.get(f"{page_server.url}/")
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "run-info"), "rlmultimodalrec"))
        driver.find_element(By.ID, "user-input").send_keys("4")
        driver.find_element(By.ID, "user-go").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recommendations li.card")) == 10)
        cards = driver.find_elements(By.CSS_SELECTOR, "#recommendations li.card")
        assert all(card.find_element(By.CLASS_NAME, "title").text.startswith("Product ") for card in cards)
        assert len(cards[0].find_elements(By.CSS_SELECTOR, ".shares span")) == 2
        assert "because you liked" in cards[0].text
        assert driver.find_elements(By.CSS_SELECTOR, "#history li.card")
        driver.find_element(By.ID, "history-input").send_keys("1, 2")
        driver.find_element(By.ID, "history-go").click()
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "history-title"), "Your history"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history li.card")) == 2)
        driver.find_element(By.ID, "user-input").clear()
        driver.find_element(By.ID, "user-input").send_keys("ghost")
        driver.find_element(By.ID, "user-go").click()
        wait.until(expected_conditions.text_to_be_present_in_element((By.ID, "error"), "unknown user 'ghost'"))
    finally:
        driver.quit()
