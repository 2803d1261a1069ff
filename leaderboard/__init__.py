"""Leaderboard: aggregation of result files and HTML rendering."""
