"""Carriers: how files travel inside HTTP bodies (encodings, multipart, JSON, forms)."""
