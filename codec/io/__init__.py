"""Files in and out: image and array readers and writers, IDX and Fashion-MNIST, 16-bit files,
the sources the CLI compresses, and the one output policy for everything aecodec writes."""
