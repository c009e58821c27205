"""Model architectures, classical methods, model cards and the registry that finds them."""
