"""Classic methods that the learned results are compared against."""
