"""The core: contract, ids, the time rule, config, errors, files, the serving store, keys, audit."""
