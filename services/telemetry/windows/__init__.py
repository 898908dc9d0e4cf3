"""Event-time windows: pure window arithmetic, watermarks and the safe commit offset. No I/O.

``stats.py`` is a window's statistics, ``model.py`` what the windows take in and give out,
``partition.py`` the windows of one partition (``series.py``, ``adding.py``, ``ledger.py`` and
``closing.py`` are its parts).
"""
