"""Masks of the images someone marked, optimised for each image with its marks (``segment``: graph cuts over
the network's probabilities, per-image colour models and contrast edges), and the one place every mask that is
shown, exported or predicted is made (``masks``)."""
