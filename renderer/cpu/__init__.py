"""The CPU rasterizer: numba kernels for each stage plus the autograd Functions that wrap them.

Stages (one module each): :mod:`.projection` (3D Gaussians → 2D conics), :mod:`.sh` (view-dependent colour),
:mod:`.binning` (tile lists sorted front to back), :mod:`.composite` (alpha blending per pixel). Every
kernel runs in float64 (one compiled specialisation, exact transmittance recovery in the backward pass),
is cached on disk (``cache=True``) and uses ``torch.get_num_threads()`` worker threads.
"""
