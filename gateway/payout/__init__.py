"""Payout decisions (utbetalingsvedtak): the message HELFO sends for every payout run."""
