"""The search language operators type (``user:adm* AND NOT outcome:success``): its parser
(``query``), its time bounds (``times``), and the time range every dashboard page honours
(``timerange``). Backends compile the parsed query themselves (``store/sqlite_search.py``)."""
