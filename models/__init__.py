"""onepass models: the VGGT-style network, ZPressor, checkpoints, procedural data and training.

Imports ``renderer`` (conventions, Gaussians) but never ``app``. Shape letters follow VGGT: ``B`` batch,
``S`` input views, ``P`` tokens per view, ``C`` channels, ``H×W`` pixels, ``h×w`` patches.
"""
