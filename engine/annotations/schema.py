"""SQLite schema of the annotation store and its migrations.

The schema version lives in ``PRAGMA user_version``. Each migration moves a database from version i to i + 1
inside one transaction, so an old project is upgraded in place on open and never left half-migrated.
"""
from __future__ import annotations

import sqlite3

SCHEMA_VERSION = 1

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE classes (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    color      TEXT NOT NULL,
    sort_order INTEGER NOT NULL
);
CREATE TABLE images (
    id        INTEGER PRIMARY KEY,
    path      TEXT NOT NULL UNIQUE,
    width     INTEGER NOT NULL CHECK (width > 0),
    height    INTEGER NOT NULL CHECK (height > 0),
    sha256    TEXT NOT NULL,
    split     TEXT CHECK (split IN ('train', 'test')),
    marks_rev INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE strokes (
    id       INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    class_id INTEGER REFERENCES classes(id) ON DELETE CASCADE,
    radius   REAL NOT NULL CHECK (radius > 0),
    points   BLOB NOT NULL
);
CREATE INDEX strokes_image ON strokes(image_id);
CREATE TABLE boxes (
    id       INTEGER PRIMARY KEY,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    class_id INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    x0 REAL NOT NULL, y0 REAL NOT NULL, x1 REAL NOT NULL, y1 REAL NOT NULL,
    CHECK (x1 > x0 AND y1 > y0)
);
CREATE INDEX boxes_image ON boxes(image_id);
CREATE TABLE tagged_images (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE
);
CREATE TABLE tags (
    image_id INTEGER NOT NULL REFERENCES tagged_images(image_id) ON DELETE CASCADE,
    class_id INTEGER NOT NULL REFERENCES classes(id) ON DELETE CASCADE,
    PRIMARY KEY (image_id, class_id)
);
CREATE TABLE ground_truth (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    png      BLOB NOT NULL
);
INSERT INTO meta(key, value) VALUES ('revision', '0');
"""

MIGRATIONS: list[str] = [_V1]
"""MIGRATIONS[i] takes a database from version i to i + 1."""


class SchemaError(Exception):
    """A database this version cannot read (written by a newer WSV Studio)."""


def migrate(conn: sqlite3.Connection) -> None:
    """Bring ``conn``'s database to SCHEMA_VERSION, refusing databases written by a newer version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SchemaError(
            f"this project was written by a newer WSV Studio (schema {version}, this version reads up to "
            f"{SCHEMA_VERSION}); update WSV Studio to open it")
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[target - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (``executescript`` would commit on its own, breaking the
    all-or-nothing transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s]
