"""Training of the built-in model on procedural scenes (VGGT's recipe, scaled to a CPU).

* :mod:`models.training.targets` — ground truth normalised as VGGT trains: first camera = world, mean point
  distance 1; pose encodings.
* :mod:`models.training.losses` — camera (pose-encoding L1 over refinement iterations), depth and point maps
  (confidence-weighted aleatoric loss + gradient term), Gaussian rendering on held-out views.
* :mod:`models.training.curriculum` — views, resolution and batch size by step.
* :mod:`models.training.batches` — batches from the procedural generator, a pure function of (seed, step).
* :mod:`models.training.checkpoint` — atomic checkpoints with optimizer, scheduler and RNG state.
* :mod:`models.training.loop` — the trainer (AdamW, warmup + cosine, grad clip, CSV log, loss-curve PNG).
"""
