"""The commands, one module per group; cli/app.py puts them together."""
