"""Model zoo: 3D encoders, decomposed task heads, modality stems (and, later, LoRA/adapters).

Import the submodules directly (``unicon_bench.models.net``); this package imports nothing heavy.
"""
