"""Thin adapters that pump adverts between a `rocknet.link.Link` and a real radio.

- `bleio.BleioRadio`: CircuitPython's `_bleio` (nRF52840 first): alternates advertise bursts
  and scan windows, extended adverts above 31 bytes.
- `bluetooth.BluetoothRadio`: MicroPython's `bluetooth` (ESP32, NimBLE): scans continuously
  through an IRQ handler and swaps the advertised packet every slot; legacy adverts only.

Both only move bytes and read the clock; every protocol decision lives in the Link. Import
the one matching the board (importing a module does not touch the radio).
"""
