"""Records, ids and encodings shared by every part of chaintrace.

Nothing in this package does I/O: it holds the vocabulary (networks, address encodings, exact amounts)
that the chain parsers, the store and the analysis code agree on.
"""
