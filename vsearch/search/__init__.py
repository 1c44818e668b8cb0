"""Search: a query clip -> the library segments it comes from."""
