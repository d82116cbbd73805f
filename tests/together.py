"""Run functions at the same time, each in a thread of its own, and wait for all of them."""

import threading


def run_together(calls: list[tuple]) -> None:
    """``calls``: (function, *arguments) each."""
    threads = [threading.Thread(target=call[0], args=call[1:]) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
