"""The HTTP service of `chaintrace serve` (FastAPI)."""
