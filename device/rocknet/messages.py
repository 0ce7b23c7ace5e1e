"""A round's rows and the two messages a node sends in them: `Geometry` (the row layout:
series rows first, then ``ctrl_rows`` rows per node), the series message (label, phase,
int8 series) and the control message (`ctrl_message` / `parse_ctrl`: flags, ack and heard
bitmaps, partial logits, the relay window of decision entries). Layouts in docs/protocol.md.
"""

import struct

from ._compat import const

# control message flags
F_LOGITS = const(0x01)  # carries partial logits for sample r-1
F_OUT = const(0x02)  # a member (in its own view) that stopped applying: remove me
F_JOIN = const(0x04)  # not applying, wants to join: add me when my rows are complete

SERIES_HEAD = const(2)  # series message: label, phase, then the series
_ENTRY = const(13)  # sample u32, outcome u8, epoch u16, since u32, back u16 (+ members)


class Geometry:
    """Row layout of a round: series rows first, then ``ctrl_rows`` rows per node."""

    def __init__(self, n_nodes, length, n_classes, row_size, window, logit_bytes=4):
        self.n = n_nodes
        self.nb = (n_nodes + 7) // 8
        self.c = n_classes
        self.window = window
        self.row_size = row_size
        self.logit_bytes = logit_bytes  # 4: float32, 2: int16 fixed point
        self.series_bytes = SERIES_HEAD + length
        self.ctrl_bytes = (1 + 2 * self.nb + logit_bytes * n_classes + 1
                           + window * (_ENTRY + self.nb))
        self.series_rows = (self.series_bytes + row_size - 1) // row_size
        self.ctrl_rows = (self.ctrl_bytes + row_size - 1) // row_size
        self.m = self.series_rows + n_nodes * self.ctrl_rows

    def owners(self, sample_owner=0):
        """Row owners for `link.Link` (the series rows are nominally ``sample_owner``'s)."""
        out = [sample_owner] * self.series_rows
        for i in range(self.n):
            out += [i] * self.ctrl_rows
        return out

    def ctrl_index(self, node):
        return self.series_rows + node * self.ctrl_rows

    def split(self, data, first):
        """{row index: bytes} of a message starting at row ``first``."""
        out = {}
        rs = self.row_size
        for k in range((len(data) + rs - 1) // rs):
            out[first + k] = data[k * rs:(k + 1) * rs]
        return out

    def join(self, rows, first, count, size):
        """The message in rows first.., or None unless all of them were decoded."""
        parts = []
        for k in range(count):
            r = rows[first + k]
            if r is None:
                return None
            parts.append(bytes(r))
        return b"".join(parts)[:size]


class _Ctrl:
    """A parsed control message."""

    def __init__(self, flags, ack, heard, logits, window):
        self.flags = flags
        self.ack = ack  # node bitmap, round r-1: messages decoded, except those flagging OUT
        self.heard = heard  # node bitmap, round r-1: every message decoded
        self.logits = logits  # bytes (4C) or None
        self.window = window  # list of (sample, outcome, epoch, members)


def ctrl_message(geo, flags, ack, heard, logits, window):
    """A control message of ``geo.ctrl_bytes``: ``logits`` the partial-logit row (None: zeros,
    F_LOGITS unset), ``window`` decision entries (sample, outcome, epoch, members, since,
    back), oldest first."""
    nb = geo.nb
    if logits is None:
        logits = bytes(geo.logit_bytes * geo.c)
    parts = [bytes([flags]), ack.to_bytes(nb, "little"), heard.to_bytes(nb, "little"),
             logits, bytes([len(window)])]
    for s, outcome, epoch, members, since, back in window:
        parts.append(struct.pack("<IBHIH", s, outcome, epoch, since, back))
        parts.append(members.to_bytes(nb, "little"))
    msg = b"".join(parts)
    return msg + bytes(geo.ctrl_bytes - len(msg))


def parse_ctrl(geo, data, window, all_mask):
    """A `_Ctrl` from a control message: at most ``window`` entries kept, members masked to
    ``all_mask``, impossible entries (back or since after the sample) dropped."""
    nb = geo.nb
    flags = data[0]
    ack = int.from_bytes(data[1:1 + nb], "little")
    heard = int.from_bytes(data[1 + nb:1 + 2 * nb], "little")
    o = 1 + 2 * nb
    w = geo.logit_bytes * geo.c
    logits = bytes(data[o:o + w]) if flags & F_LOGITS else None
    o += w
    cnt = min(data[o], window)
    o += 1
    win = []
    for _ in range(cnt):
        s, outcome, epoch, since, back = struct.unpack("<IBHIH", data[o:o + _ENTRY])
        members = int.from_bytes(data[o + _ENTRY:o + _ENTRY + nb], "little")
        o += _ENTRY + nb
        if back <= s and since <= s:
            win.append((s, outcome, epoch, members & all_mask, since, back))
    return _Ctrl(flags, ack, heard, logits, win)
