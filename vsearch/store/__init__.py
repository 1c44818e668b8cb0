"""Storage: an index folder's metadata store (LMDB) and vector store (FAISS), kept in step.

The only modules that import ``lmdb`` and ``faiss``.
"""
