"""The command line's commands, one module each (``codec.cli`` parses and dispatches to them):
``files`` (compress, decompress, test), ``info``, ``train``, ``family`` (embed, denoise, sample,
score, and training an autoencoder kind); ``outputs`` is how each of them reports and writes."""
