"""Marks the user makes (strokes, boxes, tags), the SQLite store that keeps them, and their rasterization."""
