"""Readers and writers for scene layouts and standard 3D formats."""
