"""Real boards (and the virtual board that stands in for one).

- `fleet_toml`: the fleet description (``fleet.toml``): which boards, where plugged in
- `flash`: firmware onto a board (esptool, UF2, J-Link drive)
- `deploy`: rocknet, plans, data and key onto boards, verified by hash on the board
- `validate`: cross-validation vectors computed on a connected board
- `virtual_board`: MicroPython + ulab (WebAssembly) behind a TCP raw REPL, for mpremote
"""
