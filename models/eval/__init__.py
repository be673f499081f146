"""Evaluation of reconstructions against exact ground truth, and the classical peer (COLMAP).

* :mod:`models.eval.camera` — relative rotation / translation-direction errors over all view pairs and the
  AUC@30 that VGGT reports.
* :mod:`models.eval.depth` — AbsRel and δ<1.25 with per-view median scaling or one global scale.
* :mod:`models.eval.points` — Sim(3) alignment of point clouds and the Chamfer distance.
* :mod:`models.eval.image` — PSNR and SSIM of rendered views.
* :mod:`models.eval.colmap_peer` — pycolmap SIFT + exhaustive matching + incremental mapping on CPU.
* :mod:`models.eval.motorcycle` — the Middlebury 2014 *Motorcycle* stereo pair bundled with scikit-image.
* :mod:`models.eval.suite` / :mod:`models.eval.report` — the procedural benchmark and its JSON/Markdown/plots.

Metric functions take numpy arrays (float64 internally) so they can score any method, including COLMAP.
"""
