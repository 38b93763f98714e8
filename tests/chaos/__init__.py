"""Chaos: mixed load through the gateway while a nemesis kills, stops and slows its parts."""
