"""Retrieval, store and settings for the document chatbot."""
