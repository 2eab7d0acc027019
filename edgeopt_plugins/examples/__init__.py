"""Example search spaces to copy: :mod:`edgeopt_plugins.examples.mobilenet`."""
