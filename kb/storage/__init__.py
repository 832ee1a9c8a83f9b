"""Where an index lives: the seam (``base``) and the embedded implementation behind it.

``base.py`` says what any storage must do (write a generation, open one, keyword search, vector
search, fetch papers and passages); ``store.py`` (SQLite manifest, numpy vectors, generations,
cache, lock) and ``index.py`` (tantivy) are the embedded implementation, the only one today. A second
one (an existing distributed engine) is one new module here plus the contract tests in
``tests/test_storage_contract.py``.
"""
