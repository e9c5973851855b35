"""synthssl.train.models."""
