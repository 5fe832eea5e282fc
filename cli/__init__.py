"""appbackups: the command-line client of the appbackups HTTP API."""
