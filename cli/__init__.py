"""The `sketch2color` command line and the process supervisor of `sketch2color up`: the top of the arrows,
free to import the API, the worker, the contracts and the model (each command imports what it needs late)."""
