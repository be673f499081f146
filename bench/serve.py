"""Service benchmarks → the ``## Service`` section of docs/BENCHMARKS.md and docs/bench/serve_*.png.

1. **Latency and throughput**: ``POST /v1/reconstruct`` (synchronous: upload → queue → batch → cameras
   written → answer) with 4-view 224×224 procedural scenes, at concurrency 1, 4 and 16, against two
   servers started side by side, batching on and off, interleaved run by run so both see the same machine
   load. The requests ask for ``outputs=["cameras"]`` so the numbers show the service and the model, not
   the exporters; a second concurrency-1 row asks for every output.
2. **Bare model call**: ``Reconstructor.reconstruct`` on the same images in this process (and with
   ``write_reconstruction`` of every output, for the second row), the baseline for concurrency 1.
3. **Upload memory**: 100 one-megapixel JPEGs in one ``POST /v1/reconstructions`` to a queue-only
   server; the server's peak RSS during the upload (VmHWM, reset just before) minus its RSS before.

Run: ``python -m bench.serve`` (``--quick``: 1 run, concurrency 1 and 4, no docs update).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from bench._report import cpu_name, write_section
from models.runtime import tune_malloc

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
PLOT_DIR = ROOT / "docs" / "bench"
SECTION = "## Service"
RESULTS = PLOT_DIR / "serve_results.json"  # raw results of the last run (for --render-only)
VIEWS, SIZE = 4, 224
#: server configurations: batching on / off with one worker, and two CPU workers without batching
MODES = ("on", "off", "workers2")
SWEEP = [1, 4, 8]  # batch sizes of the in-process reconstruct_batch sweep
#: the job's timings (``GET /v1/reconstructions/{id}`` → ``timings``) kept per request
JOB_STAGES = ("queue_s", "load_s", "forward_s", "write_s", "total_s")
LABELS = {
    "on": "batching on, 1 worker",
    "off": "batching off, 1 worker",
    "workers2": "batching off, 2 workers",
}


# ------------------------------------------------------------------------------------------ helpers


def proc_status(pid: int, key: str) -> int:
    """A ``/proc/<pid>/status`` memory field in bytes (VmRSS, VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def reset_peak_rss(pid: int) -> bool:
    """Reset the kernel's peak-RSS counter of ``pid`` (``clear_refs`` 5); False when not permitted."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def png(rgb: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray((np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def make_scenes(n: int) -> list[list[bytes]]:
    from models.data.procedural import make_scene

    return [
        [png(im) for im in make_scene(seed, views=VIEWS, width=SIZE, height=SIZE).images] for seed in range(n)
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(data: Path, env: dict[str, str]) -> Iterator[tuple[subprocess.Popen, str]]:
    """``python -m app serve`` in a subprocess; yields (process, base URL) once ``/readyz`` (or, with no
    workers, ``/healthz``) answers 200."""
    port = free_port()
    full_env = {**os.environ, "ONEPASS_DATA_DIR": str(data), "ONEPASS_LOG_LEVEL": "warning", **env}
    cmd = [sys.executable, "-m", "app", "serve", "--port", str(port), "--device", "cpu"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    probe = "/healthz" if env.get("ONEPASS_WORKERS") == "0" else "/readyz"
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                if httpx.get(url + probe, timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server with {env} did not become ready")
            time.sleep(0.2)
        yield proc, url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# ------------------------------------------------------------------------------------ measurements
def load_level(
    url: str, scenes: list[list[bytes]], concurrency: int, requests: int, outputs: list[str] | None
) -> dict:
    """``requests`` synchronous reconstructions, ``concurrency`` at a time; latency per request, wall time."""
    options = json.dumps({"max_anchors": 8} | ({"outputs": outputs} if outputs else {}))
    latencies: list[float] = []
    batch_sizes: list[float] = []
    job_timings: list[dict] = []  # the job's own stage timings, to say where the time outside the model goes
    errors: list[str] = []
    counter = iter(range(requests))
    lock = threading.Lock()

    def client() -> None:
        with httpx.Client(base_url=url, timeout=600) as c:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                files = [
                    ("files", (f"{k:03d}.png", b, "image/png")) for k, b in enumerate(scenes[i % len(scenes)])
                ]
                t0 = time.perf_counter()
                r = c.post("/v1/reconstruct", files=files, data={"options": options})
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.append(dt)
                        timings = r.json()["job"]["timings"]
                        batch_sizes.append(timings.get("batch_size", 1))
                        job_timings.append(timings | {"latency_s": dt})
                    else:
                        errors.append(f"{r.status_code} {r.text[:200]}")

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    return {
        "throughput": requests / wall,
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "mean_batch": float(np.mean(batch_sizes)),
        **{
            f"job_{k}": float(np.median([t[k] for t in job_timings]))
            for k in JOB_STAGES
            if all(k in t for t in job_timings)
        },
        # HTTP, multipart parsing, checking the images, the job row and the answer: latency − the job's total
        "job_outside_s": float(np.median([t["latency_s"] - t["total_s"] for t in job_timings])),
    }


class BareModel:
    """``Reconstructor.reconstruct`` (+ ``write_reconstruction`` of every output) in this process, on the
    same decoded images the servers get, called from one dedicated thread as the service's worker does
    (on a loaded machine, torch called from the main thread ran ~10x slower here than from a thread)."""

    def __init__(self, scenes: list[list[bytes]], threads: int) -> None:
        import torch

        from models import Reconstructor

        self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bare-model")
        self.thread.submit(torch.set_num_threads, threads).result()
        self.rec = self.thread.submit(Reconstructor, "tiny", device="cpu").result()
        self.scenes = [[np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in s] for s in scenes]
        self.thread.submit(self.rec.reconstruct, self.scenes[0], max_anchors=8).result()  # warm-up

    def run(self, calls: int, write_all: bool) -> dict:
        return self.thread.submit(self._run, calls, write_all).result()

    def sweep(self, sizes: list[int]) -> dict[int, float]:
        """Seconds per scene of one ``reconstruct_batch`` call at each batch size."""
        return self.thread.submit(self._sweep, sizes).result()

    def _sweep(self, sizes: list[int]) -> dict[int, float]:
        from models import ReconstructionInput

        out = {}
        for b in sizes:
            batch = [ReconstructionInput(self.scenes[i % len(self.scenes)], max_anchors=8) for i in range(b)]
            t0 = time.perf_counter()
            self.rec.reconstruct_batch(batch)
            out[b] = (time.perf_counter() - t0) / b
        return out

    def _run(self, calls: int, write_all: bool) -> dict:
        from app.services.outputs import write_reconstruction

        times = []
        for i in range(calls):
            t0 = time.perf_counter()
            r = self.rec.reconstruct(self.scenes[i % len(self.scenes)], max_anchors=8)
            if write_all:
                with tempfile.TemporaryDirectory() as d:
                    write_reconstruction(r, d, [f"{k:03d}.png" for k in range(VIEWS)])
            times.append(time.perf_counter() - t0)
        return {"p50": percentile(times, 50), "p95": percentile(times, 95)}


def upload_rss(count: int, repeats: int) -> dict:
    """Peak RSS rise of a queue-only server while it receives ``count`` one-megapixel JPEGs."""
    rng = np.random.default_rng(0)
    jpegs = []
    for _ in range(count):
        base = np.linspace(0, 255, 1000, dtype=np.float32)
        img = (base[None, :, None] * 0.5 + rng.integers(0, 128, (1000, 1000, 3))).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=90)
        jpegs.append(buf.getvalue())
    body_mb = sum(map(len, jpegs)) / 1e6
    deltas, times = [], []
    with tempfile.TemporaryDirectory() as d, server(Path(d), {"ONEPASS_WORKERS": "0"}) as (proc, url):
        files = [("files", (f"{i:03d}.jpg", b, "image/jpeg")) for i, b in enumerate(jpegs)]
        with httpx.Client(base_url=url, timeout=600) as c:
            for _ in range(repeats):
                before = proc_status(proc.pid, "VmRSS")
                if not reset_peak_rss(proc.pid):
                    raise RuntimeError("cannot reset the server's peak RSS (/proc/<pid>/clear_refs)")
                t0 = time.perf_counter()
                r = c.post("/v1/reconstructions", files=files)
                times.append(time.perf_counter() - t0)
                if r.status_code != 202:
                    raise RuntimeError(f"upload failed: {r.status_code} {r.text[:300]}")
                deltas.append(proc_status(proc.pid, "VmHWM") - before)
    return {
        "count": count,
        "body_mb": body_mb,
        "rss_rise_mb": [x / 1e6 for x in deltas],
        "median_rise_mb": statistics.median(deltas) / 1e6,
        "median_upload_s": statistics.median(times),
    }


# ------------------------------------------------------------------------------------------ output
def plot(results: dict, levels: list[int]) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    PLOT_DIR.mkdir(parents=True, exist_ok=True)
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    for mode, style in zip(MODES, ("o-", "s--", "^:"), strict=True):
        med = results["median"][mode]
        xs = [c for c in levels if c in med]
        a.plot(xs, [med[c]["throughput"] for c in xs], style, label=LABELS[mode])
        b.plot(xs, [med[c]["p95"] for c in xs], style, label=LABELS[mode])
    a.set(
        xscale="log",
        xticks=levels,
        xticklabels=levels,
        xlabel="concurrent requests",
        ylabel="scenes / s",
        title=f"Throughput, {VIEWS}-view {SIZE}×{SIZE} (CPU)",
    )
    b.axhline(results["bare"]["p95"], color="gray", lw=1, label="bare model call")
    b.set(
        xscale="log",
        xticks=levels,
        xticklabels=levels,
        xlabel="concurrent requests",
        ylabel="seconds",
        title="p95 latency",
    )
    for ax in (a, b):
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    out = PLOT_DIR / "serve_batching.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [out]


def render_section(results: dict, levels: list[int], meta: dict) -> str:
    med, bare = results["median"], results["bare"]
    per_level = ", ".join(str(meta["requests"][c]) for c in levels)
    lines = [
        SECTION,
        "",
        f"Command: `python -m bench.serve` ({meta['date']}). Machine: {meta['cpu']}, {meta['cores']} cores "
        f"shared with other work (load average {meta['load']} at the start). Medians of {meta['repeats']} "
        "runs per point; the three servers and the in-process baselines are interleaved run by run, so all "
        "saw the same load.",
        "",
        f"Workload: `POST /v1/reconstruct` of {VIEWS}-view {SIZE}×{SIZE} procedural scenes (PNG), preset "
        f"`tiny` on the CPU, one worker with {meta['threads']} torch intra-op thread(s) "
        '(`ONEPASS_TORCH_THREADS`; the bare model call uses the same), `outputs=["cameras"]`; one client '
        "thread per concurrent request, "
        f"each sending its next request when the answer arrives ({per_level} requests per level). "
        "Batching on: `ONEPASS_BATCHING=true ONEPASS_MAX_BATCH_SCENES=16 "
        f"ONEPASS_MAX_WAIT_MS={meta['wait_ms']}`; "
        "off: `ONEPASS_BATCHING=false` (one scene per forward pass). Every server runs with "
        "`ONEPASS_IDLE_TRIM_S=0` (steady state: no memory handed back while it waits for its turn).",
        "",
        "| concurrency | server | throughput (scenes/s) | p50 (s) | p95 (s) | mean batch |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for c in levels:
        for mode in MODES:
            if c not in med[mode]:
                continue
            m = med[mode][c]
            cells = [f"{m['throughput']:.2f}", f"{m['p50']:.2f}", f"{m['p95']:.2f}", f"{m['mean_batch']:.1f}"]
            lines.append(f"| {c} | {LABELS[mode]} | " + " | ".join(cells) + " |")
    top = levels[-1]
    ratio = med["on"][top]["throughput"] / med["off"][top]["throughput"]
    sweep = results["sweep"]
    sweep_text = ", ".join(f"{sweep[b]:.2f} s at {b}" for b in SWEEP)
    lines += [
        "",
        f"- Batching at concurrency {top}: **{ratio:.2f}×** the throughput of one scene per forward pass "
        f"(target ≥ 1.3×). Seconds per scene of one in-process `reconstruct_batch` call: {sweep_text} "
        "scenes per call (medians).",
    ]
    gain = sweep[SWEEP[0]] / sweep[SWEEP[-1]]
    if gain < 1.15:
        lines.append(
            f"  The model does not get cheaper per scene in a batch on this CPU ({gain:.2f}× from 1 to "
            f"{SWEEP[-1]} scenes), so grouping scenes only makes them wait for each other; "
            "`ONEPASS_BATCHING` therefore defaults to off on the CPU (on for CUDA workers, where one small "
            "scene leaves the device mostly idle; not measurable here, no GPU)."
        )
    else:
        lines.append(f"  Per scene, a batch of {SWEEP[-1]} costs {1 / gain:.2f}× one scene alone.")
    if "workers2" in med and top in med["workers2"]:
        w2 = med["workers2"][top]["throughput"] / med["off"][top]["throughput"]
        lines.append(
            f"- Two CPU workers with one thread each (`ONEPASS_WORKERS=2 ONEPASS_TORCH_THREADS=1`, no "
            f"batching): **{w2:.2f}×** the one-worker throughput at concurrency {top}."
        )
    for mode in ("off", "on"):
        p95_1 = med[mode][1]["p95"]
        per_run = ""
        if results.get("bare_runs") and len(results["bare_runs"]) == len(results["runs"][mode][1]):
            ratios = [
                (run["p95"] / b["p95"] - 1) * 100
                for run, b in zip(results["runs"][mode][1], results["bare_runs"], strict=True)
            ]
            per_run = "; run by run " + ", ".join(f"{x:+.1f}" for x in ratios) + " %"
        lines.append(
            f"- Concurrency 1, {LABELS[mode]}: p95 {p95_1:.2f} s (p50 {med[mode][1]['p50']:.2f} s) vs the "
            f"bare `Reconstructor.reconstruct` call p95 {bare['p95']:.2f} s (p50 {bare['p50']:.2f} s): "
            f"**{(p95_1 / bare['p95'] - 1) * 100:+.1f} %** (target within 10 %: "
            f"{'met' if p95_1 <= 1.10 * bare['p95'] else 'not met'}{per_run}); p50 "
            f"{(med[mode][1]['p50'] / bare['p50'] - 1) * 100:+.1f} %."
        )
    lines.append(
        f"  The bare call: {bare['runs']} calls from one thread of the bench process, between the server "
        "runs. The service adds HTTP, decoding and checking the PNGs (the synchronous route hands the "
        "decoded pixels to the worker), the job row, the queue (and the batching wait window), writing "
        "cameras.json and its manifest."
    )
    off1 = med["off"][1]
    if "job_forward_s" in off1:
        ms = {k: off1[f"job_{k}"] * 1e3 for k in (*JOB_STAGES, "outside_s")}
        other = ms["total_s"] - sum(ms[k] for k in JOB_STAGES if k != "total_s")
        lines.append(
            "  Where one request's time goes (batching off, concurrency 1, medians of the job's own "
            f"timings, ms): forward pass {ms['forward_s']:.0f} (the bare call: {bare['p50'] * 1e3:.0f}), "
            f"taking the images (decoded at upload) {ms['load_s']:.0f}, queue {ms['queue_s']:.0f}, "
            f"writing cameras.json {ms['write_s']:.0f}, other job bookkeeping {other:.0f}, and outside the "
            "job (HTTP, multipart parsing, checking every image, the job row, the answer) "
            f"{ms['outside_s']:.0f}."
        )
    if "full" in results:
        f, fb = results["full"], results["bare_full"]
        lines.append(
            "- Every output written (depth, points, splats PLY/SPZ, GLB, COLMAP, report), batching off, "
            "concurrency 1: "
            f"p95 {f['p95']:.2f} s vs {fb['p95']:.2f} s for `reconstruct` + `write_reconstruction` in "
            f"process ({(f['p95'] / fb['p95'] - 1) * 100:+.0f} %)."
        )
        again = meta.get("full_measured")
        if again:
            runs = ", ".join(f"{x:+.0f}" for x in again["runs"])
            lines[-1] += (
                f" Measured again on its own on {again['date']} (`python -m bench.serve --only-full`, "
                f"{again['repeats']} runs of {meta['requests'][1]} requests, load average {again['load']} at "
                f"the start; run by run {runs} %)."
            )
    u = results["upload"]
    rises = ", ".join(f"{x:.0f}" for x in u["rss_rise_mb"])
    lines += [
        f"- Upload of {u['count']} one-megapixel JPEGs ({u['body_mb']:.0f} MB body) to a queue-only "
        f"server: peak RSS rise at most **{max(u['rss_rise_mb']):.0f} MB** over {len(u['rss_rise_mb'])} "
        f"uploads ({rises} MB; target ≤ 500 MB), {u['median_upload_s']:.1f} s per upload including checking "
        "every image. Parts stream to disk as they arrive; images are decoded one at a time to check them.",
        "",
        "![batching](bench/serve_batching.png)",
        "",
    ]
    return "\n".join(lines) + "\n"


# -------------------------------------------------------------------------------------------- main
def server_envs(threads: int, wait_ms: float) -> dict[str, dict[str, str]]:
    """Environment of each measured server mode (batching on, off, two workers)."""
    common = {
        "ONEPASS_TORCH_THREADS": str(threads),
        "ONEPASS_MAX_BATCH_SCENES": "16",
        "ONEPASS_MAX_BATCH_TOKENS": "65536",
        # steady state: a server waiting for its turn while the others are measured would otherwise hand
        # its memory back after 30 s idle and pay the page faults again on its first measured request
        "ONEPASS_IDLE_TRIM_S": "0",
    }
    return {
        "on": {
            **common,
            "ONEPASS_WORKERS": "1",
            "ONEPASS_BATCHING": "true",
            "ONEPASS_MAX_WAIT_MS": str(wait_ms),
        },
        "off": {**common, "ONEPASS_WORKERS": "1", "ONEPASS_BATCHING": "false"},
        "workers2": {**common, "ONEPASS_WORKERS": "2", "ONEPASS_BATCHING": "false"},
    }


def medians(runs: list[dict]) -> dict:
    """Per-key median over runs that share their keys."""
    return {k: statistics.median(x[k] for x in runs) for k in runs[0]}


def remeasure_full(repeats: int, threads: int) -> int:
    """Measure the every-output row again (one batching-off server and the in-process baseline, side by
    side in each repeat) and merge it into the saved results, with its own date and load."""
    results = load_results(RESULTS)
    load_at_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    scenes = make_scenes(8)
    bare = BareModel(scenes, threads)
    calls = results["meta"]["requests"][1]
    env = server_envs(threads, wait_ms=10.0)["off"]
    full, bare_full = [], []
    with tempfile.TemporaryDirectory() as data, server(Path(data), env) as (_, url):
        load_level(url, scenes, 1, 1, None)  # unmeasured: page cache, allocator
        for r in range(repeats):
            full.append(load_level(url, scenes, 1, calls, None))
            bare_full.append(bare.run(calls, write_all=True))
            print(f"run {r} every output: {full[-1]}, in process {bare_full[-1]}", flush=True)
    results["full"], results["bare_full"] = medians(full), medians(bare_full)
    results["meta"]["full_measured"] = {
        "date": time.strftime("%Y-%m-%d"),
        "load": load_at_start,
        "repeats": repeats,
        "runs": [round((f["p95"] / b["p95"] - 1) * 100, 1) for f, b in zip(full, bare_full, strict=True)],
    }
    meta = results["meta"]
    write_section(SECTION, render_section(results, meta["levels"], meta))
    RESULTS.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {DOC} ({SECTION}) with the every-output row")
    return 0


def load_results(path: Path) -> dict:
    """A saved run's results with the concurrency levels back as ints (JSON made them strings)."""
    results = json.loads(path.read_text())
    for key in ("runs", "median"):
        results[key] = {mode: {int(c): v for c, v in per.items()} for mode, per in results[key].items()}
    if "sweep" in results:
        results["sweep"] = {int(b): v for b, v in results["sweep"].items()}
    if "meta" in results:
        results["meta"]["requests"] = {int(c): n for c, n in results["meta"]["requests"].items()}
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--wait-ms", type=float, default=10.0, help="ONEPASS_MAX_WAIT_MS of the batching server")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads of the servers' worker and the bare model",
    )
    ap.add_argument("--uploads", type=int, default=100, help="JPEGs in the upload-memory run")
    ap.add_argument("--skip-full", action="store_true", help="skip the every-output row")
    ap.add_argument(
        "--only-full",
        action="store_true",
        help=f"measure only the every-output row and merge it into the last run's {RESULTS.name}",
    )
    ap.add_argument("--quick", action="store_true", help="1 run, concurrency 1 and 4, no docs update")
    ap.add_argument(
        "--render-only",
        action="store_true",
        help=f"rewrite the docs section from the last run's {RESULTS.name} (no measurements)",
    )
    args = ap.parse_args(argv)
    if args.render_only:
        results = load_results(RESULTS)
        meta = results["meta"]
        write_section(SECTION, render_section(results, meta["levels"], meta))
        print(f"wrote {DOC} ({SECTION}) from {RESULTS}")
        return 0
    tune_malloc()  # the bare model call gets the allocator setting the servers get (models.runtime)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the servers on the way out
    if args.only_full:
        return remeasure_full(args.repeats, args.threads)
    levels = [1, 4] if args.quick else args.levels
    repeats = 1 if args.quick else args.repeats
    requests = {c: {1: 30, 4: 12}.get(c, min(2 * c, 24)) for c in levels}  # c=1: 30 samples for a p95

    load_at_start = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    scenes = make_scenes(8)
    bare = BareModel(scenes, args.threads)
    multi_levels = [c for c in levels if c > 1]
    results: dict = {
        "runs": {m: {c: [] for c in (multi_levels if m == "workers2" else levels)} for m in MODES}
    }
    extra: dict[str, list[dict]] = {"bare": [], "full": [], "bare_full": [], "sweep": []}
    configs = server_envs(args.threads, args.wait_ms)
    with ExitStack() as stack:
        urls = {}
        for mode, env in configs.items():
            data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            urls[mode] = stack.enter_context(server(data, env))[1]
        for r in range(repeats):
            for url in urls.values():  # one unmeasured request each: page cache, allocator
                load_level(url, scenes, 1, 1, ["cameras"])
            # The baselines run in the same repeat as the servers, so all see the same machine load.
            extra["bare"].append(bare.run(requests[1], write_all=False))
            extra["sweep"].append(bare.sweep(SWEEP))
            print(
                f"run {r} bare model: {extra['bare'][-1]}, per scene by batch size {extra['sweep'][-1]}",
                flush=True,
            )
            for c in levels:
                order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    if c not in results["runs"][mode]:
                        continue
                    res = load_level(urls[mode], scenes, c, requests[c], ["cameras"])
                    results["runs"][mode][c].append(res)
                    print(f"run {r} c={c} {mode}: {res}", flush=True)
            if not args.skip_full:
                extra["full"].append(load_level(urls["off"], scenes, 1, requests[1], None))
                extra["bare_full"].append(bare.run(requests[1], write_all=True))
                print(
                    f"run {r} every output: {extra['full'][-1]}, in process {extra['bare_full'][-1]}",
                    flush=True,
                )
    results["median"] = {
        mode: {c: medians(runs) for c, runs in per.items()} for mode, per in results["runs"].items()
    }
    for name, runs in extra.items():
        if runs:
            results[name] = medians(runs)
    results["bare"]["runs"] = requests[1] * repeats
    results["bare_runs"] = extra["bare"]  # per run, for the run-by-run p95 ratios
    results["upload"] = upload_rss(args.uploads, 1 if args.quick else 3)
    print("upload:", results["upload"], flush=True)
    if args.quick:
        return 0
    meta = {
        "date": time.strftime("%Y-%m-%d"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "repeats": repeats,
        "requests": requests,
        "wait_ms": f"{args.wait_ms:g}",
        "load": load_at_start,
        "threads": args.threads,
    }
    results["meta"] = meta | {"levels": levels}
    plot(results, levels)
    write_section(SECTION, render_section(results, levels, meta))
    RESULTS.write_text(json.dumps(results, indent=1, default=str))
    print(f"wrote {DOC} ({SECTION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
