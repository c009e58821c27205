"""MedViewer's trainer: the core's networks trained on a user's own folders (`medviewer-train`)."""
