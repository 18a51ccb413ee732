"""Live training in the GUI: the worker thread, the settings and plots panel, and the gradient view."""
