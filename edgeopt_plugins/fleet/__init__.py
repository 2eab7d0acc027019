"""Fleet runs: many target devices, shared storage, claims that survive crashes."""

from edgeopt_plugins.fleet._ledger import Claim, DeviceLedger, worker_id
from edgeopt_plugins.fleet._measure import CommandMeasurer, guarded
from edgeopt_plugins.fleet._storage import describe_storage, open_storage, with_retries

__all__ = ["guarded", "CommandMeasurer", "DeviceLedger", "Claim", "worker_id", "open_storage", "with_retries", "describe_storage"]
