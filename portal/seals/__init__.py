"""Seals, seal grants and grant requests; seal images and handwritten signatures."""
