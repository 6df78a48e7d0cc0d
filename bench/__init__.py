"""``make bench``: throughput, lag, bridge, overhead, memory and recovery in one run.

``python -m bench [--quick] [--report path.json]``; see docs/performance.md.
"""
