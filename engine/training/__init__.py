"""Training segmentation networks from a project's marks, as a generator of plain-data progress records."""
