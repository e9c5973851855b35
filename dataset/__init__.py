"""synthssl.dataset."""
