"""Building blocks: attention (SDPA, qk-norm, RoPE), transformer block, 2D RoPE, DINOv2 patch embed."""
