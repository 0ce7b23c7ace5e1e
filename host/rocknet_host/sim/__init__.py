"""A fleet without boards: the BLE medium, the one fleet loop on it, and the in-memory path.

- `simulate`: a whole fleet learning (`rocknet simulate`): plans, data, the loop, accuracy
- `fleet`: the one fleet loop: every node the board's own ``rocknet.run()`` `Runner`
- `vboard`: a node's virtual ``time``, ``_bleio`` and ``bluetooth`` on the medium
- `compute`: a board's compute calls priced on the board clock (the board busy meanwhile)
- `in_memory`: N device heads in one runtime, partial logits summed without a radio
- `html_report`: the ``--report`` HTML page of a simulate result

The radio simulator, a deterministic discrete-event model of BLE advertising:

- `radio`: what an adapter and stack do (RadioModel, PROFILES, plan_event)
- `phy`: advertising PDUs as bytes, airtime, channels, CRC
- `topology`: loss matrices and hop counts (full, line, grid, random, matrix file)
- `medium`: the event engine (Medium: add_node, send, crash, reboot, wake, call_at, run)
- `energy`: current-draw model per board (CurrentModel, current_model)
- `run`: rounds of all-to-all exchange, measured (run_rounds, Generation, Fault)
- `report`: per-configuration summaries; `pcap`: air traffic for Wireshark/tshark
- `flooding`: the naive-flooding baseline endpoint

Endpoints are protocol-agnostic: ``on_advert(data, now_ms)``, ``next_advert(now_ms)`` and, for
`run_rounds`, ``start_round(round_no, own_rows, now_ms)``, ``done``, ``rows()``.
"""
