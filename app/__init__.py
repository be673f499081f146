"""onepass service: HTTP API, job store, workers and the ``onepass`` command line."""
