"""synthssl.train."""
