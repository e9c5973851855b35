"""synthssl.train.clustering."""
