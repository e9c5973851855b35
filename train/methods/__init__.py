"""synthssl.train.methods."""
