"""HTTP: the operation app shared by both functions, errors, request and response models."""
