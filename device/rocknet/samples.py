"""This node's own samples, left in the data file (flash) and read one at a time. A module of
its own because the node keeps them for the whole run: `rocknet.board`, which opens and
checks the file, then leaves the heap (`rocknet.forget`), and a class defined there would
keep all of board's code alive through its methods."""


class Phase:
    """One phase's samples ("train", "eval", "predict") in the data file, as a sequence
    (``len``, ``[k]``, and so iteration) of (series bytes, label), of series bytes when not
    ``labelled`` (predict). `board.open_data` builds them once the file passed its checks."""

    def __init__(self, path, offset, n, rec, labelled=True):
        self.path, self.offset, self.n, self.rec = path, offset, n, rec
        self.labelled = labelled

    def __len__(self):
        return self.n

    def __getitem__(self, k):
        if k < 0:
            k += self.n
        if not 0 <= k < self.n:
            raise IndexError("sample %d of %d" % (k, self.n))
        with open(self.path, "rb") as fh:
            fh.seek(self.offset + k * self.rec)
            b = fh.read(self.rec)
        if len(b) != self.rec:
            raise OSError("%s was cut short after its checks: deploy it again with `rocknet "
                          "deploy --plan-dir DIR`" % self.path)
        return (b[1:], b[0]) if self.labelled else b
