"""synthssl.train.losses."""
