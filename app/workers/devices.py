"""Which devices the inference workers run on: one worker per CUDA device, else one on the CPU."""

from __future__ import annotations


def cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def worker_devices(device: str, workers: int | None, *, n_cuda: int | None = None) -> list[str]:
    """Device of each worker for the ``device`` setting (auto, cpu, cuda, cuda:N) and worker count.

    ``workers=None`` means one per device; more workers than devices share them round-robin; ``0`` means
    none (an API node that only queues jobs). ``cuda`` without a CUDA device raises ``ValueError``.
    """
    n = cuda_count() if n_cuda is None else n_cuda
    if device == "auto":
        pool = [f"cuda:{i}" for i in range(n)] or ["cpu"]
    elif device == "cpu":
        pool = ["cpu"]
    elif device == "cuda":
        pool = [f"cuda:{i}" for i in range(n)]
    elif device.startswith("cuda:") and device[5:].isdigit():
        pool = [device] if int(device[5:]) < n else []
    else:
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {device!r}")
    if not pool:
        raise ValueError(f"device={device!r} asks for CUDA but this machine has {n} CUDA device(s)")
    count = len(pool) if workers is None else workers
    if count < 0:
        raise ValueError(f"workers must be >= 0, got {count}")
    return [pool[i % len(pool)] for i in range(count)]
