"""Tariff and code data (takster, NLK register and rates): model, import, loading."""
