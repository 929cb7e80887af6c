"""State probes: how much of the game's state (RAM annotations of object positions) a
representation holds, read by linear probes and coordinate readouts; probe_state.py is a command
line over it.

The top layer: may import every other part of the package; nothing in the package imports it.
"""
