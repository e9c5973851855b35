"""synthssl.train.eval."""
