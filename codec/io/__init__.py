"""Files in and out, under the face (``codec.files``, the CLI), never importing it: ``sources``
reads what compressing and training take, ``sinks`` writes an archive back as the kind of file it
came from, over ``images`` (image files, 8 and 16 bits through ``deep``), ``idx`` and ``shapes``;
``data`` finds Fashion-MNIST; ``fileio`` is the one output policy for everything aecodec writes."""
