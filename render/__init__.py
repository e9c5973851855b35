"""synthssl.render."""
