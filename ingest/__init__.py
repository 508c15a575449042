"""Turning files into chunks with source metadata, and writing them to the store."""
