"""How much work goes to the model at once, from where it runs.

On a CPU the limit is the cache: a network's activations for a few thousand rows stay in it,
and a larger batch is slower per row, not faster (a 20→64→64→2 MLP answers a row in about
200 ns at 4096 rows a batch and 450 ns at 65536 on this project's 2-core reference machine).
On a GPU the limit is free memory: the batch is as large as half of what the device has free
allows, after measuring what one row takes.

Everything here is a pure function of the device and sizes, so that the batching, and with it
the floating-point result, is the same from run to run on the same machine.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import numpy as np
import torch

#: Rows per model call on a CPU, and the most bytes of model input one call may take.
CPU_ROWS = 4096
CPU_BYTES = 32 * 2**20
#: Input elements per stacked forward/backward pass on a CPU (32 MB of float32): small enough
#: for memory and caches, large enough that the Python overhead per pass is negligible.
CPU_ELEMENTS = 2**23
#: Share of a GPU's free memory one batch may take, and bytes a gradient pass is assumed to
#: need per input element (input, activations and their gradients) before anything is measured.
GPU_SHARE = 0.5
GPU_BYTES_PER_ELEMENT = 64
GPU_MAX_ROWS = 2**20


def is_gpu(device: Any) -> bool:
    return isinstance(device, torch.device) and device.type == "cuda"


def free_bytes(device: torch.device) -> int:
    """Free memory on a CUDA device (what the driver reports, plus what torch's allocator
    holds in reserve but does not use)."""
    free, _ = torch.cuda.mem_get_info(device)
    reserved_unused = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)
    return int(free + max(0, reserved_unused))


def cpu_query_rows(row_bytes: int) -> int:
    """Rows per model call on a CPU for rows of ``row_bytes`` bytes of model input."""
    return int(np.clip(CPU_BYTES // max(1, row_bytes), 1, CPU_ROWS))


def gpu_rows(free: int, bytes_per_row: float, *, share: float = GPU_SHARE, low: int = 1, high: int = GPU_MAX_ROWS) -> int:
    """Rows that fit in ``share`` of ``free`` bytes at ``bytes_per_row`` each."""
    return int(np.clip(int(share * free // max(1.0, bytes_per_row)), low, high))


def measure_peak(device: torch.device, run: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``run()`` on a CUDA device and return its result and the memory it took at its
    peak beyond what was allocated before."""
    torch.cuda.synchronize(device)
    before = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    out = run()
    torch.cuda.synchronize(device)
    return out, max(1, torch.cuda.max_memory_allocated(device) - before)


def max_elements(device: Any) -> int:
    """Input elements per stacked forward/backward pass: fixed on a CPU, from free memory on
    a GPU (at :data:`GPU_BYTES_PER_ELEMENT` bytes an element)."""
    if is_gpu(device):
        return gpu_rows(free_bytes(device), GPU_BYTES_PER_ELEMENT, low=CPU_ELEMENTS // 8, high=2**31)
    return CPU_ELEMENTS


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op threads set to ``n`` inside the block and restored after it: for work
    whose float sums must not depend on the machine's thread count, or small batches that more
    threads only slow down."""
    threads = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
