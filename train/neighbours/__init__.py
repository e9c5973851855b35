"""synthssl.train.neighbours."""
