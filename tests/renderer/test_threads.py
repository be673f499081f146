"""The CPU rasterizer's thread pool: concurrent callers, and a forked child that renders after its parent."""

from __future__ import annotations

import multiprocessing
import threading

import torch

import renderer.cpu._threads
from renderer import rasterize
from tests.renderer.scenes import make_scene


def _render_sum(queue, child: bool = False) -> None:
    if child:
        # torch's own OpenMP pool is not fork-safe (torch ops would hang here), so torch gets one thread;
        # the rasterizer is still told to use two, so its own pool must be rebuilt in the child
        import renderer.cpu._threads as threads

        torch.set_num_threads(1)
        threads.num_threads = lambda: 2
    s = make_scene(seed=21, n=40, width=24, height=20)
    queue.put(float(rasterize(*s.args(), backend="cpu")[0].sum()))


def test_concurrent_calls_from_threads_agree():
    s = make_scene(seed=21, n=40, width=24, height=20)
    expected = rasterize(*s.args(), backend="cpu")[0]
    results: list[torch.Tensor] = []

    def work() -> None:
        results.append(rasterize(*s.args(), backend="cpu")[0])

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == 4 and all(torch.equal(r, expected) for r in results)


def test_forked_child_renders_after_the_parent_did():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # make the parent start its worker pool
    try:
        queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
        _render_sum(queue)
        parent = queue.get(timeout=60)
        assert renderer.cpu._threads._pool is not None  # the parent's pool exists when it forks
        child = multiprocessing.get_context("fork").Process(target=_render_sum, args=(queue, True))
        child.start()
        child.join(timeout=120)
        assert child.exitcode == 0, "the forked child hung or crashed"
        assert queue.get(timeout=10) == parent
    finally:
        torch.set_num_threads(previous)
