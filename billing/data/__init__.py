"""The seed price catalog (model_prices.json, see SOURCE.md); a package so installs ship the data."""
