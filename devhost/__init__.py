"""A small local stand-in for the Azure Functions host (Core Tools cannot be installed on every machine).

It imports a Python v2 ``FunctionApp`` and runs its HTTP, timer and queue functions from the metadata they
registered. ``python -m devhost serve`` runs it; :class:`DevHost` embeds it (tests).
"""

from devhost.host import DevHost, UnknownFunction
from devhost.invoker import InvocationResult
from shared.schedules.ncrontab import next_occurrence

__all__ = ["DevHost", "InvocationResult", "UnknownFunction", "next_occurrence"]
