"""The dispatch desk, ``onetake serve``: a web page where the newsroom sees every job, checks every delivery,
acts on failures, and reporters upload from their phones.

It reads and acts through ``onetake.pipeline`` (the ledger, the inbox contract, the watcher) and never imports
``onetake.workers``: the farm it runs the watcher on is handed in by ``onetake.cli``.
"""
