"""Machine learning with no AWS in it: the training recipe and predictions."""
