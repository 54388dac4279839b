"""Running on a laptop: the local server and the command line."""
