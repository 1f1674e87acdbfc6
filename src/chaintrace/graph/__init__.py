"""In-memory arrays built from the store (CSR, dense ids) and the algorithms that need only arrays."""
