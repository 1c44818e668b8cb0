"""Feature files: per-block descriptors on disk, one format, read and written here.

- :mod:`.write`: ``vsearch features`` describes videos and writes their descriptors
  with their time axis (``.npz``, ``.npy``, ``.h5``, or a folder of ``.npz``);
- :mod:`.sources`: paths → sources, one video's features each (video_features'
  ``<stem>_<key>.npy`` with its sidecars, ``file.h5::name``), and ``--videos`` naming;
- :mod:`.timing`: a video's features on the player's timeline (their own times, or
  the ones the user gives; never guessed);
- :mod:`.read`: ``--from-features`` reads those sources (the layouts of ``vsearch
  features`` and of other tools) and puts them on an index's block grid.

What :mod:`.write` writes, :mod:`.read` reads back bit-identical. No pickle is ever read.
"""
