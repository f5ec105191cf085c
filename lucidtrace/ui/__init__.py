"""The lucidtrace server and web UI (needs the ``server`` extra).

:func:`create_app` builds the FastAPI app: OTLP and batch ingest, the JSON query API and the
server-rendered pages; ``lucidtrace serve`` runs it.
"""

from lucidtrace.ui.app import create_app
from lucidtrace.ui.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
