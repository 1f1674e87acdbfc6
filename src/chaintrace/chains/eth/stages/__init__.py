"""The stages of Ethereum ingestion (:class:`chaintrace.chains.eth.ingest.EthIngestor` runs them per batch):

``read``             column readers: hashes, addresses, amounts in 128-bit limbs, integers; located errors
``validate``         blocks (contiguous, linked by parent hash) and transactions (positions, counts, receipts)
``traces``           call-trace frames -> internal transfers, created contracts, status of receipt-less txs
``token_transfers``  token transfer rows (ERC-20, WETH wrap/unwrap)
``fees``             fee = burned + tip per transaction, and the fee transfer rows
``transfers``        transfer kinds, the rows of every source, their one chronological order
``ids``              address ids (first appearance, chronological) and asset ids
``tables``           the Arrow tables of the commit (blocks, transactions, transfers)

The ingestor itself (``ingest.py``) holds the store state (tip, address dictionary, token index) and commits.
These modules are internal to :mod:`chaintrace.chains.eth`; their underscore names are shared among them.
"""
