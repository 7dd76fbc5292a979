"""Helpers shared by every layer: YAML with line numbers, durations, paths, the record layout."""
