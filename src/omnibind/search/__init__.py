"""Search a media folder by text, picture or sound: an incremental, crash-safe index (SQLite + faiss), queries,
an HTTP service and a web page. `omnibind index | search | serve` drive it from the command line."""

from __future__ import annotations

from omnibind.search.index import Hit, SearchIndex
from omnibind.search.query import Searcher
from omnibind.search.update import UpdateReport, update_index

__all__ = ["Hit", "SearchIndex", "Searcher", "UpdateReport", "update_index"]
