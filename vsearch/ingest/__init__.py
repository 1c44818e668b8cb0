"""Ingest: readers prepare files (hash, decode, describe) anywhere; one writer commits them in order."""
