"""synthssl.train.momentum."""
