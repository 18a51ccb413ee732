"""Reading images and other files from disk into engine data structures."""
