"""synthssl.train.data."""
