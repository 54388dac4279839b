"""Storage behind small interfaces: objects (S3 | directory) and model versions on top of them."""
