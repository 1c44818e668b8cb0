"""Feature files: per-block descriptors on disk, one format, read and written here.

- :mod:`.write`: ``vsearch features`` describes videos and writes their descriptors
  with their time axis (``.npz``, ``.npy``, ``.h5``, or a folder of ``.npz``);
- :mod:`.read`: ``--from-features`` reads those, and the layouts of other tools
  (``clip_len``/``fps``/``stride`` clips, a bare ``[n, D]`` array at a rate, HDF5 groups
  or merged datasets), and puts them on an index's block grid.

What :mod:`.write` writes, :mod:`.read` reads back bit-identical. No pickle is ever read.
"""
