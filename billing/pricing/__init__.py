"""Where a call gets its price: the catalog and its rows (`catalog`, `rows`), the cost of a call (`calls`, pure),
pricing as calls are stored (`at_ingest`) and re-pricing stored calls (`repricing`)."""
